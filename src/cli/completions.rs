//! `ferrograd completions SHELL` and `ferrograd man`: shell completion
//! scripts and man pages generated from the command-line definitions, so
//! they can never disagree with `--help`.

use crate::cli::{emit, usage};
use clap::Command;
use std::path::PathBuf;

/// Options of `ferrograd completions`.
#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Options of `ferrograd man`.
#[derive(clap::Args)]
pub struct ManArgs {
    /// Write one page per command (`ferrograd.1`, `ferrograd-train.1`, ...)
    /// into this directory instead of printing the main page on stdout.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` of the command `cmd`.
pub fn completions(args: &CompletionsArgs, mut cmd: Command) -> i32 {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ferrograd", &mut script);
    emit(&String::from_utf8_lossy(&script));
    0
}

/// Prints the main man page of `cmd`, or writes every page into `--out`.
pub fn man(args: &ManArgs, cmd: Command) -> i32 {
    match &args.out {
        Some(dir) => match std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir)) {
            Ok(()) => 0,
            Err(e) => usage(format!("cannot write the man pages into {}: {e}", dir.display())),
        },
        None => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(cmd).render(&mut page) {
                Ok(()) => {
                    emit(&String::from_utf8_lossy(&page));
                    0
                }
                Err(e) => usage(format!("cannot render the man page: {e}")),
            }
        }
    }
}
