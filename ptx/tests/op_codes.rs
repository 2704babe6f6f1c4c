//! The kernels and `ferrograd_ptx::op_codes` share one table,
//! `cuda/op_codes.h`: every entry has its `case` in the kernel's switch,
//! every `case` names an entry, and no kernel passes a bare number where an
//! op code goes.

use ferrograd_ptx::op_codes::{self, TABLE};

const HEADER: &str = include_str!("../cuda/op_codes.h");
const ELEMENTWISE: &str = include_str!("../cuda/elementwise.cu");
const COMMON: &str = include_str!("../cuda/common.cuh");

/// The names of the table's entries in C enum `enum_name`, sorted.
fn names(enum_name: &str) -> Vec<&'static str> {
    let mut v: Vec<_> = TABLE.iter().filter(|e| e.0 == enum_name).map(|e| e.1).collect();
    v.sort_unstable();
    v
}

/// The function that starts at `signature`, up to its closing brace at the
/// start of a line, with `//` comments cut.
fn body(src: &str, signature: &str) -> String {
    let start = src.find(signature).unwrap_or_else(|| panic!("no `{signature}`"));
    let end = start + src[start..].find("\n}\n").expect("the function's closing brace");
    src[start..end]
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `case` labels of `body`, sorted.
fn case_labels(body: &str) -> Vec<String> {
    let mut v: Vec<String> = body
        .split("case ")
        .skip(1)
        .map(|rest| rest.split(':').next().unwrap().trim().to_string())
        .collect();
    v.sort_unstable();
    v
}

/// The switch in the function at `signature` has exactly one case per entry
/// of enum `enum_name`, each named, none a number.
fn assert_cases_are_the_table(signature: &str, enum_name: &str) {
    let labels = case_labels(&body(ELEMENTWISE, signature));
    for l in &labels {
        assert!(
            !l.starts_with(|c: char| c.is_ascii_digit()),
            "`{signature}` has a numeric `case {l}`"
        );
    }
    assert_eq!(
        labels,
        names(enum_name),
        "the cases of `{signature}` against enum {enum_name} of op_codes.h"
    );
}

#[test]
fn unary_apply_has_a_named_case_for_each_unary_code() {
    assert_cases_are_the_table("T unary_apply(", "UnaryCode");
}

#[test]
fn binary_apply_has_a_named_case_for_each_binary_code() {
    assert_cases_are_the_table("T binary_apply(", "BinaryCode");
}

/// The first argument of every call (or definition) of `function` in `src`.
fn first_args<'a>(src: &'a str, function: &str) -> Vec<&'a str> {
    src.split(function)
        .skip(1)
        .map(|rest| rest.split([',', ')']).next().unwrap().trim())
        .collect()
}

#[test]
fn no_reduction_is_passed_a_numeric_op_code() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/cuda");
    let mut calls = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        for function in ["red_init<T>(", "red_init(", "red_fold(", "block_reduce("] {
            for arg in first_args(&src, function) {
                let what = format!("{}: {function}{arg}, ...)", path.display());
                assert!(!arg.contains(|c: char| c.is_ascii_digit()), "{what}: a numeric op code");
                if arg.starts_with("REDUCE_") {
                    assert!(names("ReduceCode").contains(&arg), "{what}: not in op_codes.h");
                }
                calls += 1;
            }
        }
    }
    assert!(calls > 20, "found only {calls} reduction calls: has the source moved?");
}

#[test]
fn the_reduction_folds_name_every_reduce_code() {
    let folds = body(COMMON, "T red_init(") + &body(COMMON, "T red_fold(");
    for rest in folds.split("op == ").skip(1) {
        let code = rest
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap();
        assert!(
            names("ReduceCode").contains(&code),
            "common.cuh compares op with `{code}`"
        );
    }
    for name in names("ReduceCode") {
        assert!(COMMON.contains(name), "common.cuh does not mention {name}");
    }
}

#[test]
fn the_generated_constants_are_the_header_lines() {
    for enum_name in ["UnaryCode", "BinaryCode", "ReduceCode"] {
        assert!(
            HEADER.contains(&format!("enum {enum_name} {{")),
            "op_codes.h lacks enum {enum_name}"
        );
        assert!(!names(enum_name).is_empty(), "no {enum_name} entries were generated");
    }
    for (_, name, value) in TABLE {
        assert!(
            HEADER.contains(&format!("    {name} = {value},")),
            "{name} = {value} is not a line of op_codes.h"
        );
    }
    let lines = HEADER
        .lines()
        .filter(|l| l.starts_with("    ") && l.contains(" = "))
        .count();
    assert_eq!(TABLE.len(), lines, "an op_codes.h entry was not generated");
    assert_eq!(
        (op_codes::UNARY_NEG, op_codes::BINARY_GE, op_codes::REDUCE_MIN),
        (0, 12, 2)
    );
}
