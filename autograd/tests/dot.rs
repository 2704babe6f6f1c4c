//! `Var::to_dot`: the recorded graph as Graphviz text.
use ferrograd_autograd::Var;
use ferrograd_engine::{DType, Tensor};

fn scalar(v: f64) -> Tensor {
    Tensor::scalar(v, DType::F64)
}

#[test]
fn the_picture_has_one_node_per_var_and_one_edge_per_input() {
    let x = Var::parameter(scalar(2.0));
    let y = Var::constant(scalar(3.0));
    let a = x.mul(&y).unwrap();
    let loss = a.add(&x).unwrap().log().unwrap();
    let dot = loss.to_dot();
    // x, y, mul, add, log; x is used twice but drawn once.
    assert_eq!(dot.matches("[label=").count(), 5, "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 2 + 2 + 1, "{dot}");
    for label in ["parameter", "constant", "\"mul", "\"add", "\"log"] {
        assert!(dot.contains(label), "{label} missing: {dot}");
    }
    // Inputs come first: the output is the last node and reads the add.
    assert!(dot.contains("v3 -> v4;"), "{dot}");
    assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
}

#[test]
fn the_same_computation_gives_the_same_text() {
    let build = || {
        let w = Var::parameter(Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], [2, 2]).unwrap());
        w.matmul(&w).unwrap().tanh().unwrap().sum_all().unwrap().to_dot()
    };
    assert_eq!(build(), build());
    assert!(build().contains("[2, 2]") || build().contains("[2,2]"), "{}", build());
}
