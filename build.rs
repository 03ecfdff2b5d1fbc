//! Tells the test suite whether a PostgreSQL server is there to run it against: with
//! `NASHRA_TEST_POSTGRES_URL` set, the PostgreSQL copies of the tests run; without it they
//! are listed as ignored, with that reason, instead of passing silently.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=NASHRA_TEST_POSTGRES_URL");
    if std::env::var("NASHRA_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
