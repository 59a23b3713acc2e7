//! The `etcdboard` binary: parse flags, set up logging, build the app, serve until stopped.

use clap::Parser;
use etcdboard::app::App;
use etcdboard::config::{Cli, Command, Config};

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    etcdboard::telemetry::init(cli.log_format, std::io::stdout);
    let result = match &cli.command {
        Command::Serve(args) => match Config::from_serve(args) {
            Ok(config) => serve(config).await,
            Err(e) => Err(e.into()),
        },
        Command::Demo(args) => etcdboard::demo::run(args, shutdown_signal()).await,
        Command::HashPassword => hash_password(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etcdboard: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let base = config.base_path.clone();
    let app = App::build(config).await?;
    tracing::info!(address = %app.local_addr()?, base = %base, "etcdboard listening");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// `etcdboard hash-password`: one line of stdin (the password, never an argument: it would land
/// in shell history and `ps`) → its argon2id hash on stdout.
fn hash_password() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("no password on standard input (e.g. `read -rs PW; printf '%s\\n' \"$PW\" | etcdboard hash-password`)".into());
    }
    let hash = etcdboard::domain::session::PasswordHash::create(password)?;
    println!("{}", hash.as_str());
    Ok(())
}
