//! `ferrograd optimizers`: the catalog, with each optimizer's hyperparameters.

use crate::cli::emit;
use ferrograd::optim::catalog;

/// Options of `ferrograd optimizers`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON array on stdout instead of a listing.
    #[arg(long)]
    json: bool,
}

fn json() -> String {
    let entries: Vec<serde_json::Value> = catalog::all()
        .iter()
        .map(|o| {
            let hps: Vec<serde_json::Value> = o
                .hyperparams
                .iter()
                .map(|h| serde_json::json!({ "name": h.name, "default": h.default, "about": h.about }))
                .collect();
            serde_json::json!({
                "name": o.name,
                "about": o.about,
                "default": o.name == catalog::DEFAULT,
                "hyperparams": hps,
            })
        })
        .collect();
    serde_json::Value::Array(entries).to_string() + "\n"
}

/// A default value as a person would write it: `0.001`, `0.9`, `1e-8`.
fn number(x: f64) -> String {
    if x != 0.0 && !(1e-3..1e5).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

fn listing() -> String {
    let mut text = String::new();
    for o in catalog::all() {
        let mark = if o.name == catalog::DEFAULT { "  (default)" } else { "" };
        text.push_str(&format!("{}{mark}\n  {}\n", o.name, o.about));
        let width = o.hyperparams.iter().map(|h| h.name.len()).max().unwrap_or(0);
        for h in o.hyperparams {
            text.push_str(&format!(
                "    {:<width$}  {:>10}  {}\n",
                h.name,
                number(h.default),
                h.about
            ));
        }
        text.push('\n');
    }
    text.push_str("Choose with `ferrograd train --optimizer NAME`, override with `--hp KEY=VALUE` (repeatable).\n");
    text
}

/// Runs `ferrograd optimizers`.
pub fn run(args: &Args) -> i32 {
    emit(&if args.json { json() } else { listing() });
    0
}
