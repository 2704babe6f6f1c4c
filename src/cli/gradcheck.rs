//! `ferrograd gradcheck`: every registered op over many random cases, first
//! derivatives (`--order 1`, the default) or second (`--order 2`), of the
//! backward rules (`--mode reverse`, the default), the forward rules
//! (`--mode forward`) or both.

use ferrograd_autograd::registry::{self, OpEntry};
use ferrograd_autograd::suite::{check_entry_in, EntrySummary, Mode, Order};

/// Which rules `ferrograd gradcheck` checks.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Backward rules against finite differences (order 2: reverse over reverse).
    Reverse,
    /// Forward rules against finite differences along random directions,
    /// and the dot-product test against the backward rules (order 2: forward
    /// over reverse).
    Forward,
    /// Both, one row per op and mode.
    Both,
}

impl ModeArg {
    /// The modes to run, in order.
    fn modes(self) -> &'static [Mode] {
        match self {
            ModeArg::Reverse => &[Mode::Reverse],
            ModeArg::Forward => &[Mode::Forward],
            ModeArg::Both => &[Mode::Reverse, Mode::Forward],
        }
    }
}

/// Options of `ferrograd gradcheck`.
#[derive(clap::Args)]
pub struct Args {
    /// Random cases per op.
    #[arg(long, default_value_t = 64)]
    cases: usize,
    /// Seed of the first case (case i uses seed + i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Check only the op with this name (see the table for names).
    #[arg(long)]
    op: Option<String>,
    /// Print one JSON object per op instead of a table.
    #[arg(long)]
    json: bool,
    /// 1: gradients against finite differences of the function; 2: gradients
    /// of gradients (the recorded backward pass) against finite differences
    /// of the gradient.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    order: u8,
    /// Which rules to check: the backward rules (reverse), the forward
    /// rules (forward: JVPs against finite differences and against the
    /// backward rules by the dot-product test), or both.
    #[arg(long, value_enum, default_value_t = ModeArg::Reverse)]
    mode: ModeArg,
}

fn json_line(s: &EntrySummary, order: Order, mode: Mode) -> String {
    serde_json::json!({
        "op": s.op,
        "order": order.number(),
        "mode": mode.name(),
        "cases": s.cases,
        "worst_abs_error": s.worst_abs_error,
        "worst_rel_error": s.worst_rel_error,
        "passed": s.passed(),
        "first_failure": s.first_failure,
    })
    .to_string()
}

fn table_line(s: &EntrySummary, mode: Mode) -> String {
    format!(
        "{:<14} {:<8} {:>6} {:>14.3e} {:>14.3e}  {}",
        s.op,
        mode.name(),
        s.cases,
        s.worst_abs_error,
        s.worst_rel_error,
        if s.passed() {
            "ok".to_string()
        } else {
            format!("FAILED: {}", s.first_failure.as_deref().unwrap_or(""))
        }
    )
}

/// Runs the check; exit code 1 if any op fails, 2 for an unknown op name.
pub fn run(args: &Args) -> i32 {
    let entries = registry::entries();
    let selected: Vec<_> = entries
        .iter()
        .filter(|e| args.op.as_deref().is_none_or(|name| name == e.name))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        eprintln!(
            "error: no op named {:?}; known ops: {}",
            args.op.as_deref().unwrap_or(""),
            names.join(", ")
        );
        return 2;
    }
    if args.cases == 0 {
        eprintln!("error: --cases must be at least 1");
        return 2;
    }
    if !args.json {
        println!(
            "{:<14} {:<8} {:>6} {:>14} {:>14}  result",
            "op", "mode", "cases", "worst abs err", "worst rel err"
        );
    }
    let order = if args.order == 2 { Order::Second } else { Order::First };
    let mut failed = 0;
    for entry in selected.iter() {
        failed += check_and_print(entry, args, order);
    }
    if !args.json {
        let rows = selected.len() * args.mode.modes().len();
        println!(
            "{} checks ({} ops, {} derivatives, {}), {} passed, {} failed",
            rows,
            selected.len(),
            if order == Order::Second { "second" } else { "first" },
            args.mode
                .modes()
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(" and "),
            rows - failed,
            failed
        );
    }
    i32::from(failed > 0)
}

/// Checks one entry in every selected mode, printing a row each; returns
/// the number of failed rows.
fn check_and_print(entry: &OpEntry, args: &Args, order: Order) -> usize {
    let mut failed = 0;
    for &mode in args.mode.modes() {
        let summary = check_entry_in(entry, args.cases, args.seed, order, mode);
        failed += usize::from(!summary.passed());
        let row = if args.json {
            json_line(&summary, order, mode)
        } else {
            table_line(&summary, mode)
        };
        println!("{row}");
    }
    failed
}
