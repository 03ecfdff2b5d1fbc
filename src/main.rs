use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    nashra::init_tracing();
    let cli = nashra::cli::Cli::parse();
    match nashra::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
