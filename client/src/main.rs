//! `kvctl`: the command-line client of RingKV.
//!
//! Parses the arguments (`kvctl::args`), runs one command against a node
//! (`kvctl::run`), renders the answer with pure functions (`kvctl::human`,
//! `kvctl::json`) and maps failures to exit codes (`kvctl::exit`).

mod kvctl;

use std::io::Write as _;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // `exit` prints usage errors (status 2) and help (status 0) as `Cli::parse` does.
    let cli = kvctl::connection::parse_cli(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr().lock();
    let result = kvctl::run::run(cli, &mut stdout, &mut stderr).await;
    let flushed = stdout.flush();
    let error = match (result, flushed) {
        (Ok(()), Ok(())) => return ExitCode::SUCCESS,
        (Err(error), _) => error,
        (Ok(()), Err(error)) => error.into(),
    };
    if kvctl::exit::is_broken_pipe(&error) {
        // The reader went away (`kvctl scan --all | head`): not our failure.
        return ExitCode::SUCCESS;
    }
    let _ = stderr.write_all(kvctl::exit::render_error(&error).as_bytes());
    ExitCode::from(kvctl::exit::exit_code(&error))
}
