//! [`Var::to_dot`]: a recorded graph as Graphviz DOT text, for pictures of
//! the tape in teaching material and for debugging a model's wiring.

use crate::Var;
use std::collections::HashMap;
use std::fmt::Write;

/// How one `Var` appears in the picture.
fn node_line(number: usize, var: &Var) -> String {
    let shape = var.shape();
    match var.node() {
        Some(node) => format!("  v{number} [label=\"{}\\n{shape}\"];", node.op.kind().name()),
        None if var.requires_grad() => {
            format!("  v{number} [label=\"parameter\\n{shape}\", shape=box];")
        }
        None => format!("  v{number} [label=\"constant\\n{shape}\", shape=box, style=dashed];"),
    }
}

impl Var {
    /// The graph that produced this `Var`, as Graphviz DOT text: one node per
    /// recorded op (its name and output shape), parameters as boxes,
    /// constants as dashed boxes, and an edge from each input to each op
    /// that reads it. Nodes are numbered in the order the graph is walked,
    /// inputs first, so the same computation always gives the same text.
    /// Render it with `dot -Tsvg graph.dot > graph.svg`.
    pub fn to_dot(&self) -> String {
        let order = crate::backward::inputs_first(self, |_| true);
        let numbers: HashMap<usize, usize> = order.iter().enumerate().map(|(n, v)| (v.id(), n)).collect();
        let mut text = String::from("digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
        for (number, var) in order.iter().enumerate() {
            writeln!(text, "{}", node_line(number, var)).expect("writing to a String");
        }
        for (number, var) in order.iter().enumerate() {
            for input in var.node().map(|n| n.inputs.as_slice()).unwrap_or_default() {
                writeln!(text, "  v{} -> v{number};", numbers[&input.id()]).expect("writing to a String");
            }
        }
        text.push_str("}\n");
        text
    }
}
