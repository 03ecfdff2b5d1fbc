//! A real DNS server private to one test: Debian's `dnsmasq` (package `dnsmasq-base`, the
//! program without the system service) on a free port of 127.0.0.1, answering only the
//! records the test gives it — no upstream, no /etc/hosts, no configuration file — and killed
//! when dropped.

use std::{
    net::{SocketAddr, TcpListener, UdpSocket},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nashra::dns::Dns;

/// The record every server answers, so a test knows it is up.
const READY: &str = "ready.nashra.test";

/// Records to serve, in dnsmasq's terms.
#[derive(Default, Clone)]
pub struct Zone {
    args: Vec<String>,
    /// The domains it answers for (the last two labels of each name): a name there that has
    /// no record gets NXDOMAIN, as from an authoritative server, where dnsmasq without an
    /// upstream would refuse the query.
    domains: std::collections::BTreeSet<String>,
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    fn answers_for(&mut self, name: &str) {
        let labels: Vec<&str> = name.rsplit('.').take(2).collect();
        self.domains
            .insert(labels.into_iter().rev().collect::<Vec<_>>().join("."));
    }

    /// A TXT record; one longer than 255 bytes is published as several strings (as a DNS host
    /// does), which a reader must join.
    pub fn txt(mut self, name: &str, text: &str) -> Zone {
        // dnsmasq separates strings with commas; none of our records holds one.
        assert!(!text.contains(','), "{text}");
        let strings: Vec<&str> = text
            .as_bytes()
            .chunks(250)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        self.answers_for(name);
        self.args
            .push(format!("--txt-record={name},{}", strings.join(",")));
        self
    }

    pub fn mx(mut self, name: &str, exchange: &str, preference: u16) -> Zone {
        self.answers_for(name);
        self.args
            .push(format!("--mx-host={name},{exchange},{preference}"));
        self
    }

    /// An A (or AAAA) record.
    pub fn host(mut self, name: &str, addr: &str) -> Zone {
        self.answers_for(name);
        self.args.push(format!("--host-record={name},{addr}"));
        self
    }
}

pub struct TestDns {
    pub addr: SocketAddr,
    child: Child,
}

impl TestDns {
    /// Starts dnsmasq with `zone` and waits until it answers.
    pub async fn start(zone: &Zone) -> TestDns {
        let program = if std::path::Path::new("/usr/sbin/dnsmasq").exists() {
            "/usr/sbin/dnsmasq"
        } else {
            "dnsmasq"
        };
        // A port free for UDP and TCP when we look may be taken before dnsmasq binds it: then
        // dnsmasq exits, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(program)
                .args([
                    "--no-daemon", // foreground, no pid file, no change of user
                    "--conf-file=/dev/null",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--no-resolv",
                    "--no-hosts",
                    "--log-facility=-",
                    &format!("--txt-record={READY},ready"),
                ])
                .args(&zone.args)
                .args(zone.domains.iter().map(|d| format!("--local=/{d}/")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(
                    "dnsmasq runs (Debian's dnsmasq-base: scripts/test and .ci/run install it)",
                );
            let mut server = TestDns {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
            };
            if server.wait_until_answering().await {
                return server;
            }
        }
        panic!("dnsmasq did not start on any of five ports");
    }

    async fn wait_until_answering(&mut self) -> bool {
        let dns = Dns::with_timeout(&[self.addr], Duration::from_millis(300)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false; // it could not bind the port
            }
            if dns.txt(READY).await.is_ok_and(|t| t == ["ready"]) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dnsmasq on {} did not answer in 10 s", self.addr);
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
