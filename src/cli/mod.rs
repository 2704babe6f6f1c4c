//! Subcommands of the `ferrograd` binary. Each lives in its own file and
//! returns the process exit code: 0 success, 1 a check failed, 2 bad usage
//! or input. Every error is one line on stderr starting `error:`.

mod completions;
mod data;
mod eval;
mod gradcheck;
mod metrics;
mod optimizers;
mod race;
mod serve;
mod train;
mod viz;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write;

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
    /// Score a model saved by `train --out` on its instance's test split.
    Eval(eval::Args),
    /// List the optimizers, their hyperparameters and defaults.
    Optimizers(optimizers::Args),
    /// Write an instance's train/val/test data as .npy files.
    Data(data::Args),
    /// Race optimizers over tracks and seeds under the task protocol (resumable, shardable).
    Race(race::Args),
    /// Draw optimizer trajectories on 2-D test functions (SVG, or --json).
    Viz(viz::Args),
    /// Serve the interactive page: optimizer playground, training monitor, race viewer.
    Serve(serve::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (or write every command's page with --out DIR).
    Man(completions::ManArgs),
}

/// Prints a usage error (`error: ...`, one line) and returns exit code 2.
pub(crate) fn usage(message: impl std::fmt::Display) -> i32 {
    let line = message.to_string().replace('\n', " ");
    eprintln!("error: {line}");
    2
}

/// Writes `text` to stdout; a closed pipe (`ferrograd ... | head`) is not an error.
pub(crate) fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Condenses clap's multi-line error into one `error:` line: the message,
/// any list of missing arguments and tips, without the usage block.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered.lines().map(str::trim) {
        if part.is_empty() || part.starts_with("Usage:") || part.starts_with("For more information") {
            continue;
        }
        if !line.is_empty() {
            line.push_str(if part.starts_with("tip:") { "; " } else { " " });
        }
        line.push_str(part);
    }
    if !line.starts_with("error:") {
        line.insert_str(0, "error: ");
    }
    line + " (see --help)"
}

/// Parses the command line, runs the subcommand, returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let names: Vec<String> = Cli::command()
                    .get_subcommands()
                    .map(|c| c.get_name().to_string())
                    .collect();
                return usage(format!(
                    "no command given; choose one of: {} (see --help)",
                    names.join(", ")
                ));
            }
            if e.use_stderr() {
                eprintln!("{}", one_line(&e.render().to_string()));
                return 2;
            }
            let _ = e.print();
            return 0;
        }
    };
    // A FERROGRAD_ISA this CPU cannot honour is a usage error, not a
    // silent fall-back to another instruction set (and other numbers).
    if let Err(e) = ferrograd::engine::isa::from_env() {
        return usage(e.to_string());
    }
    match cli.command {
        Command::Gradcheck(args) => gradcheck::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Optimizers(args) => optimizers::run(&args),
        Command::Data(args) => data::run(&args),
        Command::Race(args) => race::run(&args),
        Command::Viz(args) => viz::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Completions(args) => completions::completions(&args, Cli::command()),
        Command::Man(args) => completions::man(&args, Cli::command()),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --model <FILE>\n\n\
                        Usage: ferrograd eval --model <FILE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "error: the following required arguments were not provided: --model <FILE> (see --help)"
        );
        let tip = "error: unexpected argument '--sed' found\n\n  tip: a similar argument exists: '--seed'\n\n\
                   Usage: ferrograd train --seed <SEED>\n";
        assert_eq!(
            one_line(tip),
            "error: unexpected argument '--sed' found; tip: a similar argument exists: '--seed' (see --help)"
        );
    }
}
