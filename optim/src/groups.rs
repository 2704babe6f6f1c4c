//! Parameter groups: different treatment for different tensors (no decay on
//! biases and BatchNorm, a smaller rate for the output layer, ...).
//!
//! The benchmark hands the optimizer bare tensors in a fixed order
//! (`docs/task.md` section 3), so the roles are recovered from the shapes
//! alone ([`roles_from_shapes`], [`TaskLayout`]); users with named
//! parameters select by name instead ([`by_name`], [`labels_by_name`]).
//! Two transformations act on the selection:
//!
//! * [`Partition`] routes each parameter to one of several inner chains by a
//!   label (optax's `multi_transform`): each chain sees only its own
//!   parameters, with its own state.
//! * [`Masked`] applies one inner chain to the selected parameters and
//!   passes the others through unchanged or zeroes them ([`Unmasked`]).
//!
//! ```
//! use ferrograd_engine::{Shape, Tensor};
//! use ferrograd_optim::basic::{ScaleByAdam, ScaleByLr};
//! use ferrograd_optim::groups::{Partition, Role};
//! use ferrograd_optim::schedule::Constant;
//! use ferrograd_optim::transform::ChainOptimizer;
//! use ferrograd_optim::{chain, StepContext, TaskOptimizer};
//!
//! // Adam everywhere, with a 10x smaller rate for the output layer.
//! let hidden = chain![ScaleByAdam::new(0.9, 0.999, 1e-8, false), ScaleByLr::new(Constant(1e-3))];
//! let output = chain![ScaleByAdam::new(0.9, 0.999, 1e-8, false), ScaleByLr::new(Constant(1e-4))];
//! let by_role = |r: Role| usize::from(matches!(r, Role::OutputWeight | Role::OutputBias));
//! let mut opt = ChainOptimizer::new("adam_groups", chain![Partition::by_role(vec![hidden.into(), output.into()], by_role)]);
//! // A model of two Linear layers (1 -> 4 -> 2) with one BatchNorm.
//! let shapes = [[4, 1].into(), [4].into(), [2, 4].into(), [2].into(), [4].into(), [4].into(), [4].into(), [4].into()];
//! opt.init_state(0, &shapes)?;
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```

use crate::transform::{Chain, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Error, Result, Shape, Tensor};

/// What a tensor of the task's model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The weight `[out, in]` of a Linear layer followed by ReLU and BatchNorm.
    HiddenWeight,
    /// The bias of such a layer.
    HiddenBias,
    /// The weight of the last Linear layer.
    OutputWeight,
    /// The bias of the last Linear layer.
    OutputBias,
    /// A BatchNorm scale (gamma).
    BnScale,
    /// A BatchNorm shift (beta).
    BnShift,
    /// A BatchNorm running mean or variance (never trained: the harness
    /// ignores its update).
    BnRunningStat,
}

impl Role {
    /// Weights (rank 2) as opposed to biases and BatchNorm vectors: the
    /// usual target of weight decay.
    pub fn is_weight(self) -> bool {
        matches!(self, Role::HiddenWeight | Role::OutputWeight)
    }

    /// Whether the optimizer's update can matter at all (everything but the
    /// running statistics).
    pub fn is_parameter(self) -> bool {
        self != Role::BnRunningStat
    }
}

/// The task model's structure recovered from its tensor shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLayout {
    /// The role of each tensor, in the task's order.
    pub roles: Vec<Role>,
    /// The index of each tensor's layer: the Linear layer for weights and
    /// biases, the BatchNorm (which follows the Linear layer of the same
    /// index) for BatchNorm tensors.
    pub layers: Vec<usize>,
    /// The number of Linear layers (`n_hidden + 1` in the task).
    pub depth: usize,
}

impl TaskLayout {
    /// Reads the layout from the task's tensor order: `W0, b0, ..., Wn, bn`
    /// (`W` of rank 2, `[out, in]`; `b` of rank 1, `[out]`), then for each
    /// of the `n` BatchNorms (one after every Linear layer but the last)
    /// `scale, shift, running_mean, running_var`, each `[out]` of its layer.
    /// Fails, saying why, for shapes that are not of this form.
    pub fn from_shapes(shapes: &[Shape]) -> Result<TaskLayout> {
        let bad = |msg: String| Error::invalid("task layout", msg);
        let mut depth = 0;
        let mut widths = Vec::new();
        while 2 * depth + 1 < shapes.len() && shapes[2 * depth].rank() == 2 {
            let (w, b) = (&shapes[2 * depth], &shapes[2 * depth + 1]);
            if b.rank() != 1 || b.dims()[0] != w.dims()[0] {
                return Err(bad(format!(
                    "tensor {} has shape {b}, expected the bias [{}] of weight {w}",
                    2 * depth + 1,
                    w.dims()[0]
                )));
            }
            if let Some(&prev) = widths.last() {
                if w.dims()[1] != prev {
                    return Err(bad(format!(
                        "weight {} has shape {w}; the previous layer has {prev} outputs",
                        2 * depth
                    )));
                }
            }
            widths.push(w.dims()[0]);
            depth += 1;
        }
        if depth == 0 {
            return Err(bad("expected W0 (rank 2), b0 (rank 1), ... first".into()));
        }
        let bn_count = depth - 1;
        let rest = &shapes[2 * depth..];
        if rest.len() != 4 * bn_count {
            return Err(bad(format!(
                "{depth} Linear layers need {} BatchNorm tensors after them, got {}",
                4 * bn_count,
                rest.len()
            )));
        }
        let mut roles = Vec::with_capacity(shapes.len());
        let mut layers = Vec::with_capacity(shapes.len());
        for layer in 0..depth {
            let last = layer + 1 == depth;
            roles.push(if last { Role::OutputWeight } else { Role::HiddenWeight });
            roles.push(if last { Role::OutputBias } else { Role::HiddenBias });
            layers.extend([layer, layer]);
        }
        for (bn, chunk) in rest.chunks(4).enumerate() {
            for (k, s) in chunk.iter().enumerate() {
                if s.dims() != [widths[bn]] {
                    return Err(bad(format!(
                        "BatchNorm {bn} tensor {k} has shape {s}, expected [{}]",
                        widths[bn]
                    )));
                }
            }
            roles.extend([Role::BnScale, Role::BnShift, Role::BnRunningStat, Role::BnRunningStat]);
            layers.extend([bn; 4]);
        }
        Ok(TaskLayout { roles, layers, depth })
    }

    /// Whether the harness applies the update of each tensor: not for the
    /// running statistics, and not for the frozen last two Linear layers
    /// (the last hidden Linear with its BatchNorm, and the output Linear;
    /// `docs/task.md` section 2).
    pub fn trained_mask(&self) -> Vec<bool> {
        let frozen_from = self.depth.saturating_sub(2);
        self.roles
            .iter()
            .zip(&self.layers)
            .map(|(r, &l)| r.is_parameter() && l < frozen_from)
            .collect()
    }
}

/// The role of each tensor of the task's model, from the shapes alone (see
/// [`TaskLayout::from_shapes`]).
pub fn roles_from_shapes(shapes: &[Shape]) -> Result<Vec<Role>> {
    Ok(TaskLayout::from_shapes(shapes)?.roles)
}

/// The number of Linear layers of the task's model with these shapes.
pub fn depth_from_shapes(shapes: &[Shape]) -> Result<usize> {
    Ok(TaskLayout::from_shapes(shapes)?.depth)
}

/// Whether `name` matches `pattern`: `*` matches any run of characters
/// (dots included), `?` any one character; a pattern without wildcards
/// matches the name itself and every name it is a dotted prefix of
/// (`linear.0` matches `linear.0.weight`, not `linear.01.weight`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name == pattern || name.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('.'));
    }
    glob(pattern.as_bytes(), name.as_bytes())
}

/// Wildcard matching with backtracking to the last `*`.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A mask over named parameters: `true` where the name matches any of
/// `patterns` ([`name_matches`]). For [`Masked::with_mask`] or
/// [`crate::basic::AddDecayedWeights`]'s `mask`.
pub fn by_name<S: AsRef<str>>(names: &[S], patterns: &[&str]) -> Vec<bool> {
    names
        .iter()
        .map(|n| patterns.iter().any(|p| name_matches(p, n.as_ref())))
        .collect()
}

/// Group labels for named parameters: the group of the first rule whose
/// pattern matches, else `default`. For [`Partition::with_labels`].
pub fn labels_by_name<S: AsRef<str>>(names: &[S], rules: &[(&str, usize)], default: usize) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            rules
                .iter()
                .find(|(p, _)| name_matches(p, n.as_ref()))
                .map_or(default, |&(_, g)| g)
        })
        .collect()
}

/// Computes per-parameter labels from the shapes, at `init`.
type Labeler<T> = Box<dyn Fn(&[Shape]) -> Result<Vec<T>> + Send>;

/// The labels, checked against the number of parameters.
fn labels_for<T>(labeler: &Labeler<T>, shapes: &[Shape], op: &'static str) -> Result<Vec<T>> {
    let labels = labeler(shapes)?;
    if labels.len() != shapes.len() {
        return Err(Error::invalid(
            op,
            format!("{} labels for {} parameters", labels.len(), shapes.len()),
        ));
    }
    Ok(labels)
}

/// `items[i]` for each `i` in `idx`.
fn pick<T: Clone>(items: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| items[i].clone()).collect()
}

/// Routes each parameter to one of several inner transformations (optax's
/// `multi_transform`). Parameter `i` goes to group `label[i]`; each group
/// sees only its own parameters (updates and `params`, in their original
/// order) and keeps its own state, saved under `{prefix}g{k}.`. Groups with
/// no parameters are not called. The labels are computed from the shapes at
/// `init`.
pub struct Partition {
    groups: Vec<Box<dyn Transform>>,
    labeler: Labeler<usize>,
    /// The parameter indices of each group.
    members: Vec<Vec<usize>>,
}

impl Partition {
    /// Groups chosen by `labeler(shapes)` (one label per parameter, each
    /// below `groups.len()`).
    pub fn new(
        groups: Vec<Box<dyn Transform>>,
        labeler: impl Fn(&[Shape]) -> Result<Vec<usize>> + Send + 'static,
    ) -> Partition {
        Partition {
            groups,
            labeler: Box::new(labeler),
            members: Vec::new(),
        }
    }

    /// Fixed labels, one per parameter (from [`labels_by_name`], say).
    pub fn with_labels(groups: Vec<Box<dyn Transform>>, labels: Vec<usize>) -> Partition {
        Partition::new(groups, move |_| Ok(labels.clone()))
    }

    /// Groups by the task role of each tensor ([`roles_from_shapes`]).
    pub fn by_role(groups: Vec<Box<dyn Transform>>, group_of: impl Fn(Role) -> usize + Send + 'static) -> Partition {
        Partition::new(groups, move |shapes| {
            Ok(roles_from_shapes(shapes)?.into_iter().map(&group_of).collect())
        })
    }

    /// The group of each parameter, as of the last `init`.
    pub fn labels(&self) -> Vec<usize> {
        let n = self.members.iter().map(Vec::len).sum();
        let mut labels = vec![0; n];
        for (g, idx) in self.members.iter().enumerate() {
            for &i in idx {
                labels[i] = g;
            }
        }
        labels
    }
}

impl From<Chain> for Box<dyn Transform> {
    fn from(chain: Chain) -> Self {
        Box::new(chain)
    }
}

impl Transform for Partition {
    fn init(&mut self, shapes: &[Shape]) -> Result<()> {
        let labels = labels_for(&self.labeler, shapes, "partition")?;
        let mut members = vec![Vec::new(); self.groups.len()];
        for (i, &g) in labels.iter().enumerate() {
            let slot = members.get_mut(g).ok_or_else(|| {
                Error::invalid(
                    "partition",
                    format!(
                        "parameter {i} has group {g}, but there are {} groups",
                        self.groups.len()
                    ),
                )
            })?;
            slot.push(i);
        }
        for (group, idx) in self.groups.iter_mut().zip(&members) {
            group.init(&pick(shapes, idx))?;
        }
        self.members = members;
        Ok(())
    }

    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let total: usize = self.members.iter().map(Vec::len).sum();
        if total != updates.len() {
            return Err(Error::invalid(
                "partition",
                format!("set up for {total} parameters, got {}; call init first", updates.len()),
            ));
        }
        let mut out: Vec<Option<Tensor>> = vec![None; updates.len()];
        for (group, idx) in self.groups.iter_mut().zip(&self.members) {
            if idx.is_empty() {
                continue;
            }
            let params = pick(info.params, idx);
            let sub = StepInfo {
                count: info.count,
                params: &params,
                ctx: info.ctx,
            };
            let result = group.update(pick(&updates, idx), &sub)?;
            if result.len() != idx.len() {
                return Err(Error::invalid(
                    "partition",
                    format!("a group returned {} updates for {} parameters", result.len(), idx.len()),
                ));
            }
            for (&i, u) in idx.iter().zip(result) {
                out[i] = Some(u);
            }
        }
        Ok(out
            .into_iter()
            .map(|u| u.expect("every parameter has a group"))
            .collect())
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        for (k, g) in self.groups.iter().enumerate() {
            g.save(&format!("{prefix}g{k}."), state);
        }
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        for (k, g) in self.groups.iter_mut().enumerate() {
            g.load(&format!("{prefix}g{k}."), state)?;
        }
        Ok(())
    }

    /// Slots are numbered within the group, not by parameter.
    fn indexes_by_parameter(&self) -> bool {
        false
    }
}

/// What [`Masked`] does with the parameters outside its mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmasked {
    /// Their updates pass through unchanged (optax's `masked`): use it to
    /// apply one stage (clipping, decay) to a subset inside a longer chain.
    PassThrough,
    /// Their updates become zero: use it as the whole optimizer to freeze
    /// parameters (the running statistics, the task's frozen layers) and
    /// spend no work on them.
    Zero,
}

/// Applies `inner` to the masked parameters only (it sees just those, and
/// keeps state for just those, saved under `{prefix}inner.`); the others are
/// passed through or zeroed as [`Unmasked`] says. The mask is computed from
/// the shapes at `init`.
pub struct Masked {
    inner: Box<dyn Transform>,
    masker: Labeler<bool>,
    unmasked: Unmasked,
    selected: Vec<usize>,
    n: usize,
}

impl Masked {
    /// `inner` on the parameters where `masker(shapes)` is true.
    pub fn new(
        inner: impl Transform + 'static,
        masker: impl Fn(&[Shape]) -> Result<Vec<bool>> + Send + 'static,
        unmasked: Unmasked,
    ) -> Masked {
        Masked {
            inner: Box::new(inner),
            masker: Box::new(masker),
            unmasked,
            selected: Vec::new(),
            n: 0,
        }
    }

    /// `inner` on the parameters where `mask` is true (from [`by_name`], say).
    pub fn with_mask(inner: impl Transform + 'static, mask: Vec<bool>, unmasked: Unmasked) -> Masked {
        Masked::new(inner, move |_| Ok(mask.clone()), unmasked)
    }

    /// `inner` on the tensors whose task role satisfies `keep`.
    pub fn by_role(
        inner: impl Transform + 'static,
        keep: impl Fn(Role) -> bool + Send + 'static,
        unmasked: Unmasked,
    ) -> Masked {
        Masked::new(
            inner,
            move |shapes| Ok(roles_from_shapes(shapes)?.into_iter().map(&keep).collect()),
            unmasked,
        )
    }
}

impl Transform for Masked {
    fn init(&mut self, shapes: &[Shape]) -> Result<()> {
        let mask = labels_for(&self.masker, shapes, "masked")?;
        self.selected = (0..shapes.len()).filter(|&i| mask[i]).collect();
        self.n = shapes.len();
        self.inner.init(&pick(shapes, &self.selected))
    }

    fn update(&mut self, updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if updates.len() != self.n {
            return Err(Error::invalid(
                "masked",
                format!(
                    "set up for {} parameters, got {}; call init first",
                    self.n,
                    updates.len()
                ),
            ));
        }
        let params = pick(info.params, &self.selected);
        let sub = StepInfo {
            count: info.count,
            params: &params,
            ctx: info.ctx,
        };
        let inner = self.inner.update(pick(&updates, &self.selected), &sub)?;
        if inner.len() != self.selected.len() {
            return Err(Error::invalid(
                "masked",
                "the inner stage changed the number of updates",
            ));
        }
        let mut out = updates;
        if self.unmasked == Unmasked::Zero {
            for u in out.iter_mut() {
                *u = u.zeros_like();
            }
        }
        for (&i, u) in self.selected.iter().zip(inner) {
            out[i] = u;
        }
        Ok(out)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.inner.save(&format!("{prefix}inner."), state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.inner.load(&format!("{prefix}inner."), state)
    }

    /// Slots are numbered within the group, not by parameter.
    fn indexes_by_parameter(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basic::ScaleByLr;
    use crate::schedule::Constant;
    use crate::transform::ChainOptimizer;
    use crate::{chain, StepContext, TaskOptimizer};

    /// The task model's shapes for `n_hidden` (input 1, width 256, output 2).
    fn task_shapes(n_hidden: usize) -> Vec<Shape> {
        let mut widths = vec![1];
        widths.extend(std::iter::repeat_n(256, n_hidden));
        widths.push(2);
        let mut shapes: Vec<Shape> = Vec::new();
        for w in widths.windows(2) {
            shapes.push([w[1], w[0]].into());
            shapes.push([w[1]].into());
        }
        for _ in 0..n_hidden {
            shapes.extend(std::iter::repeat_n(Shape::from([256]), 4));
        }
        shapes
    }

    #[test]
    fn roles_of_the_task_model_with_four_hidden_layers() {
        let shapes = task_shapes(4);
        assert_eq!(shapes.len(), 26);
        assert_eq!(shapes[0].dims(), [256, 1]);
        assert_eq!(shapes[8].dims(), [2, 256]);
        let layout = TaskLayout::from_shapes(&shapes).unwrap();
        assert_eq!(layout.depth, 5);
        use Role::*;
        let mut expected = vec![];
        for _ in 0..4 {
            expected.extend([HiddenWeight, HiddenBias]);
        }
        expected.extend([OutputWeight, OutputBias]);
        for _ in 0..4 {
            expected.extend([BnScale, BnShift, BnRunningStat, BnRunningStat]);
        }
        assert_eq!(layout.roles, expected);
        assert_eq!(roles_from_shapes(&shapes).unwrap(), expected);
        assert_eq!(&layout.layers[..10], &[0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        assert_eq!(&layout.layers[10..], &[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
        // Trained: Linear 0..=2 and BatchNorm 0..=2 scale/shift.
        let trained: Vec<usize> = (0..26).filter(|&i| layout.trained_mask()[i]).collect();
        assert_eq!(trained, vec![0, 1, 2, 3, 4, 5, 10, 11, 14, 15, 18, 19]);
        let trainable: usize = trained.iter().map(|&i| shapes[i].numel()).sum();
        assert_eq!(trainable, 133_632, "docs/task.md's count for n = 4");
        for n in [7, 10, 14, 18] {
            assert_eq!(depth_from_shapes(&task_shapes(n)).unwrap(), n + 1);
        }
    }

    #[test]
    fn malformed_layouts_are_refused() {
        let mut shapes = task_shapes(2);
        assert!(roles_from_shapes(&shapes[..shapes.len() - 1]).is_err());
        shapes[1] = [3].into();
        assert!(roles_from_shapes(&shapes).is_err());
        assert!(roles_from_shapes(&[[4].into()]).is_err());
        // A single Linear layer has no BatchNorm.
        assert_eq!(
            roles_from_shapes(&[[2, 3].into(), [2].into()]).unwrap(),
            vec![Role::OutputWeight, Role::OutputBias]
        );
    }

    #[test]
    fn name_patterns() {
        assert!(name_matches("linear.0", "linear.0.weight"));
        assert!(!name_matches("linear.0", "linear.01.weight"));
        assert!(name_matches("*.bias", "linear.3.bias"));
        assert!(name_matches("bn.?.running_*", "bn.2.running_var"));
        assert!(!name_matches("bn.?.running_*", "bn.12.running_var"));
        assert!(name_matches("*", ""));
        let names = ["linear.0.weight", "linear.0.bias", "bn.0.weight", "bn.0.running_mean"];
        assert_eq!(by_name(&names, &["*.bias", "bn.*"]), vec![false, true, true, true]);
        assert_eq!(
            labels_by_name(&names, &[("bn.*.running_*", 2), ("bn", 1)], 0),
            vec![0, 0, 1, 2]
        );
    }

    fn sgd(lr: f64) -> Box<dyn Transform> {
        chain![ScaleByLr::new(Constant(lr))].into()
    }

    #[test]
    fn partition_routes_each_role_to_its_group() {
        let shapes = task_shapes(2); // W0 b0 W1 b1 W2 b2, 2 x 4 BN tensors
        let lrs = [1.0, 2.0, 3.0, 4.0];
        let group_of = |r: Role| match r {
            Role::HiddenWeight | Role::OutputWeight => 0,
            Role::HiddenBias | Role::OutputBias => 1,
            Role::BnScale | Role::BnShift => 2,
            Role::BnRunningStat => 3,
        };
        let groups = lrs.iter().map(|&lr| sgd(lr)).collect();
        let mut opt = ChainOptimizer::new("groups", chain![Partition::by_role(groups, group_of)]);
        opt.init_state(0, &shapes).unwrap();
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::zeros(s.clone(), ferrograd_engine::DType::F64).unwrap())
            .collect();
        let grads: Vec<Tensor> = params.iter().map(|p| p.ones_like()).collect();
        let updates = opt.step(&params, &grads, &StepContext::default()).unwrap();
        let roles = roles_from_shapes(&shapes).unwrap();
        for (i, u) in updates.iter().enumerate() {
            assert_eq!(u.shape(), &shapes[i]);
            let expected = -lrs[group_of(roles[i])];
            assert!(u.to_vec::<f64>().iter().all(|&v| v == expected), "tensor {i}");
        }
    }

    #[test]
    fn partition_groups_keep_separate_state_and_round_trip() {
        use crate::basic::ScaleByAdam;
        let adam = |lr: f64| -> Box<dyn Transform> {
            chain![ScaleByAdam::new(0.9, 0.999, 1e-8, false), ScaleByLr::new(Constant(lr))].into()
        };
        let build = || {
            ChainOptimizer::new(
                "p",
                chain![Partition::with_labels(vec![adam(0.1), adam(0.01)], vec![1, 0, 1])],
            )
        };
        let shapes = [Shape::from([2]), Shape::from([3]), Shape::from([1])];
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::ones(s.clone(), ferrograd_engine::DType::F64).unwrap())
            .collect();
        let grads: Vec<Tensor> = params.iter().map(|p| p.mul_scalar(0.5)).collect();
        let ctx = StepContext::default();
        let mut a = build();
        a.init_state(0, &shapes).unwrap();
        let u = a.step(&params, &grads, &ctx).unwrap();
        // Adam's first step is lr in size: 0.01 for parameters 0 and 2, 0.1 for 1.
        assert!((u[0].to_vec::<f64>()[0] + 0.01).abs() < 1e-6);
        assert!((u[1].to_vec::<f64>()[0] + 0.1).abs() < 1e-6);
        assert!((u[2].to_vec::<f64>()[0] + 0.01).abs() < 1e-6);
        let state = a.state();
        assert!(state.tensors.contains_key("0.g0.0.m.0") && state.tensors.contains_key("0.g1.0.m.1"));
        let mut b = build();
        b.init_state(0, &shapes).unwrap();
        b.load_state(&state).unwrap();
        let ua = a.step(&params, &grads, &ctx).unwrap();
        let ub = b.step(&params, &grads, &ctx).unwrap();
        for (x, y) in ua.iter().zip(&ub) {
            assert_eq!(x.to_vec::<f64>(), y.to_vec::<f64>());
        }
    }

    #[test]
    fn partition_rejects_bad_labels() {
        let mut p = Partition::with_labels(vec![sgd(1.0)], vec![0, 1]);
        assert!(p.init(&[[1].into(), [1].into()]).is_err());
        let mut p = Partition::with_labels(vec![sgd(1.0)], vec![0]);
        assert!(p.init(&[[1].into(), [1].into()]).is_err());
    }

    #[test]
    fn masked_passes_through_or_zeroes_the_rest() {
        let shapes = [Shape::from([2]), Shape::from([2])];
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::ones(s.clone(), ferrograd_engine::DType::F64).unwrap())
            .collect();
        let grads = params.clone();
        let ctx = StepContext::default();
        let info = StepInfo {
            count: 1,
            params: &params,
            ctx: &ctx,
        };
        for (mode, other) in [(Unmasked::PassThrough, 1.0), (Unmasked::Zero, 0.0)] {
            let mut m = Masked::with_mask(ScaleByLr::new(Constant(0.5)), vec![false, true], mode);
            m.init(&shapes).unwrap();
            let out = m.update(grads.clone(), &info).unwrap();
            assert_eq!(out[0].to_vec::<f64>(), vec![other; 2]);
            assert_eq!(out[1].to_vec::<f64>(), vec![-0.5; 2]);
        }
        // By role: only the running statistics zeroed.
        let shapes = task_shapes(1);
        let mut m = Masked::by_role(ScaleByLr::new(Constant(1.0)), Role::is_parameter, Unmasked::Zero);
        m.init(&shapes).unwrap();
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::ones(s.clone(), ferrograd_engine::DType::F64).unwrap())
            .collect();
        let info = StepInfo {
            count: 1,
            params: &params,
            ctx: &ctx,
        };
        let out = m.update(params.clone(), &info).unwrap();
        let sums: Vec<f64> = out.iter().map(|u| u.sum_all().to_scalar().unwrap()).collect();
        assert_eq!(sums[4..], [-256.0, -256.0, 0.0, 0.0]);
        assert_eq!(sums[0], -256.0);
    }
}
