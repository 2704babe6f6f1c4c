//! Subcommands of the `ferrograd` binary. Each lives in its own file and
//! returns the process exit code: 0 success, 1 a check failed, 2 bad usage
//! or input.

mod gradcheck;
mod metrics;
mod train;

use clap::{Parser, Subcommand};

/// ferrograd: tensors, autodiff and optimizers for small networks.
#[derive(Parser)]
#[command(name = "ferrograd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gradient-check every registered op against finite differences.
    Gradcheck(gradcheck::Args),
    /// Train the benchmark MLP under the task's protocol and print its score.
    Train(train::Args),
}

/// Parses the command line, runs the subcommand, returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Gradcheck(args) => gradcheck::run(&args),
        Command::Train(args) => train::run(&args),
    }
}
