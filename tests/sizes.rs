//! Layers too large to hold are typed errors, never aborts: `Linear::new`
//! past the engine's `MAX_ELEMENTS` fails before allocating, and within it
//! but past memory fails with `OutOfMemory`. The out-of-memory case runs in
//! a child process whose address space is capped (`ulimit -v`), so nothing
//! here allocates more than a few megabytes.

use ferrograd::engine::{DType, Error, Rng, MAX_ELEMENTS};
use ferrograd::nn::{Linear, Mlp};

#[test]
fn layers_past_max_elements_are_refused_before_allocating() {
    let mut rng = Rng::new(0);
    for (fan_in, fan_out) in [(1 << 21, 1 << 20), (1 << 32, 1 << 32), (usize::MAX, 2), (1, usize::MAX)] {
        match Linear::new(fan_in, fan_out, DType::F32, &mut rng) {
            Err(Error::TooManyElements { op, limit, .. }) => assert_eq!((op, limit), ("rand_uniform", MAX_ELEMENTS)),
            other => panic!("Linear::new({fan_in}, {fan_out}): expected TooManyElements, got {other:?}"),
        }
    }
    // A refused layer draws nothing: the generator is where it started.
    assert_eq!(rng, Rng::new(0));
    let mlp = ferrograd::nn::Activation::Relu;
    assert!(Mlp::new(&[1 << 21, 1 << 20, 1], mlp, 0, DType::F32, &mut rng).is_err());
}

/// Set in the child process that runs [`out_of_memory_case`].
const CHILD: &str = "FERROGRAD_NN_SIZES_CHILD";

#[cfg(unix)]
#[test]
fn a_layer_within_the_limit_that_memory_cannot_hold_is_out_of_memory() {
    let name = "a_layer_within_the_limit_that_memory_cannot_hold_is_out_of_memory";
    if std::env::var_os(CHILD).is_some() {
        return out_of_memory_case();
    }
    // A 4 GiB address space: ample for the test binary, far below the
    // 8 TiB asked for, whatever the kernel's overcommit policy.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" --exact \"$1\" --test-threads=1")
        .arg(std::env::current_exe().unwrap())
        .arg(name)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the capped child failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `Linear::new(2^20, 2^20)`: 2^40 f64 weights, 8 TiB (run capped only).
fn out_of_memory_case() {
    match Linear::new(1 << 20, 1 << 20, DType::F64, &mut Rng::new(0)) {
        Err(Error::OutOfMemory { op, bytes }) => assert_eq!((op, bytes), ("rand_uniform", 8 << 40)),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
}
