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

/// Every `Var` reachable from `root`, each once, inputs before the ops that
/// use them (an iterative walk, so deep graphs cannot overflow the stack).
fn inputs_first(root: &Var) -> Vec<Var> {
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((var, inputs_done)) = stack.pop() {
        if inputs_done {
            order.push(var);
            continue;
        }
        if !seen.insert(var.id()) {
            continue;
        }
        stack.push((var.clone(), true));
        if let Some(node) = var.node() {
            for input in node.inputs.iter().rev() {
                stack.push((input.clone(), false));
            }
        }
    }
    order
}

impl Var {
    /// The graph that produced this `Var`, as Graphviz DOT text: one node per
    /// recorded op (its name and output shape), parameters as boxes,
    /// constants as dashed boxes, and an edge from each input to each op
    /// that reads it. Nodes are numbered in the order the graph is walked,
    /// inputs first, so the same computation always gives the same text.
    /// Render it with `dot -Tsvg graph.dot > graph.svg`.
    pub fn to_dot(&self) -> String {
        let order = inputs_first(self);
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
