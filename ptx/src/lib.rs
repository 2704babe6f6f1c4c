//! CUDA kernels for ferrograd, as CUDA C sources and committed PTX text.
//!
//! The sources live in `ptx/cuda/*.cu`, one module per op family
//! (elementwise, reductions and softmax, GEMM, BatchNorm, indexing, random
//! fills, fused optimizers, the task MLP's fused step). `ptx/regen.sh` compiles each with a pinned
//! NVRTC 12.0 to `ptx/ptx/<module>.ptx` (PTX ISA 8.0, target `sm_70`, so
//! the driver JIT-compiles it for any newer GPU) and lists every kernel in
//! `src/generated.rs`. Building needs no CUDA compiler: the PTX is committed.
//!
//! ```
//! let gemm = ferrograd_ptx::module("gemm").unwrap();
//! assert!(gemm.ptx.contains(".entry gemm_f32"));
//! assert!(ferrograd_ptx::has_kernel("adam_multi_f64"));
//! ```
#![deny(missing_docs)]

/// One PTX module: a `.cu` file's compiled text and its kernel names.
#[derive(Debug, Clone, Copy)]
pub struct Module {
    /// The module name (the `.cu` file's stem).
    pub name: &'static str,
    /// The PTX text, ready for `cuModuleLoadData`.
    pub ptx: &'static str,
    /// The names of the module's kernels (its `.entry` symbols).
    pub kernels: &'static [&'static str],
}

#[rustfmt::skip]
mod generated;
pub use generated::MODULES;

/// The module called `name`, if there is one.
pub fn module(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.name == name)
}

/// The module that defines kernel `kernel`, if any.
pub fn module_of(kernel: &str) -> Option<&'static Module> {
    MODULES.iter().find(|m| m.kernels.contains(&kernel))
}

/// Whether some module defines kernel `kernel`.
pub fn has_kernel(kernel: &str) -> bool {
    module_of(kernel).is_some()
}

/// Every kernel name of every module.
pub fn kernels() -> impl Iterator<Item = &'static str> {
    MODULES.iter().flat_map(|m| m.kernels.iter().copied())
}

/// The PTX ISA version a module declares (its `.version` line), as
/// `(major, minor)`.
pub fn ptx_isa_version(ptx: &str) -> Option<(u32, u32)> {
    let line = ptx.lines().find(|l| l.starts_with(".version"))?;
    let (major, minor) = line.split_whitespace().nth(1)?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(ptx: &str) -> Vec<&str> {
        ptx.lines()
            .filter_map(|l| l.strip_prefix(".visible .entry "))
            .map(|l| l.split('(').next().unwrap().trim())
            .collect()
    }

    #[test]
    fn kernel_lists_match_the_ptx_entries() {
        assert_eq!(MODULES.len(), 8);
        for m in MODULES {
            assert_eq!(entries(m.ptx), m.kernels, "module {}", m.name);
            assert!(m.ptx.contains(&format!("from ptx/cuda/{}.cu", m.name)));
        }
    }

    #[test]
    fn every_module_is_ptx_isa_8_0_or_older_for_sm_70() {
        for m in MODULES {
            let v = ptx_isa_version(m.ptx).expect("a .version line");
            assert!(v <= (8, 0), "{} declares PTX ISA {v:?}", m.name);
            assert!(m.ptx.contains(".target sm_70"), "{}", m.name);
        }
        assert_eq!(ptx_isa_version(".version 7.8\n"), Some((7, 8)));
        assert_eq!(ptx_isa_version("no version"), None);
    }

    #[test]
    fn every_generic_kernel_exists_in_both_dtypes_and_names_are_unique() {
        let all: Vec<&str> = kernels().collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "duplicate kernel names");
        for k in &all {
            if let Some(stem) = k.strip_suffix("_f32").filter(|_| !k.starts_with("cast_")) {
                assert!(has_kernel(&format!("{stem}_f64")), "{k} has no f64 twin");
            }
        }
        assert_eq!(module_of("gemm_f64").map(|m| m.name), Some("gemm"));
        assert!(!has_kernel("gemm_f16"));
        assert!(module("nope").is_none());
    }

    #[test]
    fn every_source_has_a_module() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/cuda");
        let mut cu: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "cu").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        cu.sort();
        let names: Vec<&str> = MODULES.iter().map(|m| m.name).collect();
        assert_eq!(cu, names);
    }
}
