//! `ferrograd gradcheck`: every registered op over many random cases, first
//! derivatives (`--order 1`, the default) or second (`--order 2`).

use ferrograd_autograd::registry;
use ferrograd_autograd::suite::{check_entry_at, EntrySummary, Order};

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
}

fn json_line(s: &EntrySummary, order: Order) -> String {
    serde_json::json!({
        "op": s.op,
        "order": order.number(),
        "cases": s.cases,
        "worst_abs_error": s.worst_abs_error,
        "worst_rel_error": s.worst_rel_error,
        "passed": s.passed(),
        "first_failure": s.first_failure,
    })
    .to_string()
}

fn table_line(s: &EntrySummary) -> String {
    format!(
        "{:<14} {:>6} {:>14.3e} {:>14.3e}  {}",
        s.op,
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
            "{:<14} {:>6} {:>14} {:>14}  result",
            "op", "cases", "worst abs err", "worst rel err"
        );
    }
    let order = if args.order == 2 { Order::Second } else { Order::First };
    let mut failed = 0;
    for entry in selected.iter() {
        let summary = check_entry_at(entry, args.cases, args.seed, order);
        failed += usize::from(!summary.passed());
        println!(
            "{}",
            if args.json {
                json_line(&summary, order)
            } else {
                table_line(&summary)
            }
        );
    }
    if !args.json {
        println!(
            "{} ops checked ({} derivatives), {} passed, {} failed",
            selected.len(),
            if order == Order::Second { "second" } else { "first" },
            selected.len() - failed,
            failed
        );
    }
    i32::from(failed > 0)
}
