//! Parameter groups: different treatment for different tensors (no decay on
//! biases and BatchNorm, a smaller rate for the output layer, ...).
//!
//! The training loop tells the optimizer what each tensor is (a
//! [`ModelLayout`] with a [`Role`] per tensor), so groups can be chosen by
//! role ([`Partition::by_role`], [`Masked::by_role`]); users with named
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
//! use ferrograd_optim::groups::Partition;
//! use ferrograd_optim::layout::{ModelLayout, Role};
//! use ferrograd_optim::schedule::Constant;
//! use ferrograd_optim::transform::ChainOptimizer;
//! use ferrograd_optim::{chain, StepContext, TaskOptimizer};
//!
//! // Adam everywhere, with a 10x smaller rate for the output layer.
//! let hidden = chain![ScaleByAdam::new(0.9, 0.999, 1e-8, false), ScaleByLr::new(Constant(1e-3))];
//! let output = chain![ScaleByAdam::new(0.9, 0.999, 1e-8, false), ScaleByLr::new(Constant(1e-4))];
//! let by_role = |r: Role, model: &ModelLayout| usize::from(r.is_linear() && model.is_output_layer(r.layer()));
//! let mut opt = ChainOptimizer::new("adam_groups", chain![Partition::by_role(vec![hidden.into(), output.into()], by_role)]);
//! // A model of two Linear layers (1 -> 4 -> 2) with one BatchNorm.
//! let shapes = [[4, 1].into(), [4].into(), [2, 4].into(), [2].into(), [4].into(), [4].into(), [4].into(), [4].into()];
//! opt.init_state(0, &ModelLayout::task_model(&shapes)?)?;
//! # Ok::<(), ferrograd_engine::Error>(())
//! ```

use crate::layout::{ModelLayout, Role};
use crate::transform::{Chain, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Error, Result, Tensor};

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

/// Computes per-parameter labels from the model's layout, at `init`.
type Labeler<T> = Box<dyn Fn(&ModelLayout) -> Result<Vec<T>> + Send>;

/// The labels, checked against the number of parameters.
fn labels_for<T>(labeler: &Labeler<T>, layout: &ModelLayout, op: &'static str) -> Result<Vec<T>> {
    let labels = labeler(layout)?;
    if labels.len() != layout.len() {
        return Err(Error::invalid(
            op,
            format!("{} labels for {} parameters", labels.len(), layout.len()),
        ));
    }
    Ok(labels)
}

/// The role of each tensor, or an error saying that grouping by role needs
/// a model that names its tensors' roles.
fn roles_of(layout: &ModelLayout, op: &'static str) -> Result<Vec<Role>> {
    layout.roles().map(<[Role]>::to_vec).ok_or_else(|| {
        Error::invalid(
            op,
            "grouping by role needs a model layout with roles (ModelLayout::new with roles, \
             or Mlp::layout); this one has only shapes: group by name or by labels instead",
        )
    })
}

/// `items[i]` for each `i` in `idx`.
fn pick<T: Clone>(items: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| items[i].clone()).collect()
}

/// Routes each parameter to one of several inner transformations (optax's
/// `multi_transform`). Parameter `i` goes to group `label[i]`; each group
/// sees only its own parameters (updates and `params`, in their original
/// order) and keeps its own state, saved under `{prefix}g{k}.`. Groups with
/// no parameters are not called. The labels are computed from the model's
/// layout at `init`.
///
/// Built on [`Masked`]: group `k` is `inner_k` masked to the parameters
/// labelled `k`, passing the others through, and the groups run one after
/// the other. The groups are disjoint, so each sees its parameters'
/// incoming updates, untouched by the others.
pub struct Partition {
    groups: Vec<Masked>,
    labeler: Labeler<usize>,
    labels: Vec<usize>,
}

impl Partition {
    /// Groups chosen by `labeler(layout)` (one label per parameter, each
    /// below `groups.len()`).
    pub fn new(
        groups: Vec<Box<dyn Transform>>,
        labeler: impl Fn(&ModelLayout) -> Result<Vec<usize>> + Send + 'static,
    ) -> Partition {
        let no_mask = |_: &ModelLayout| -> Result<Vec<bool>> { Ok(Vec::new()) };
        Partition {
            groups: groups
                .into_iter()
                .map(|inner| Masked::boxed(inner, Box::new(no_mask), Unmasked::PassThrough))
                .collect(),
            labeler: Box::new(labeler),
            labels: Vec::new(),
        }
    }

    /// Fixed labels, one per parameter (from [`labels_by_name`], say).
    pub fn with_labels(groups: Vec<Box<dyn Transform>>, labels: Vec<usize>) -> Partition {
        Partition::new(groups, move |_| Ok(labels.clone()))
    }

    /// Groups by the role of each tensor: `group_of(role, model)` (the
    /// model, to ask whether a layer is the output layer, say). Fails at
    /// `init` for a layout without roles.
    pub fn by_role(
        groups: Vec<Box<dyn Transform>>,
        group_of: impl Fn(Role, &ModelLayout) -> usize + Send + 'static,
    ) -> Partition {
        Partition::new(groups, move |layout| {
            Ok(roles_of(layout, "Partition::by_role")?
                .into_iter()
                .map(|r| group_of(r, layout))
                .collect())
        })
    }

    /// The group of each parameter, as of the last `init`.
    pub fn labels(&self) -> Vec<usize> {
        self.labels.clone()
    }
}

impl From<Chain> for Box<dyn Transform> {
    fn from(chain: Chain) -> Self {
        Box::new(chain)
    }
}

impl Transform for Partition {
    fn init(&mut self, layout: &ModelLayout) -> Result<()> {
        let labels = labels_for(&self.labeler, layout, "partition")?;
        if let Some((i, &g)) = labels.iter().enumerate().find(|&(_, &g)| g >= self.groups.len()) {
            return Err(Error::invalid(
                "partition",
                format!(
                    "parameter {i} has group {g}, but there are {} groups",
                    self.groups.len()
                ),
            ));
        }
        for (k, group) in self.groups.iter_mut().enumerate() {
            let mask: Vec<bool> = labels.iter().map(|&g| g == k).collect();
            group.init_with_mask(layout, &mask)?;
        }
        self.labels = labels;
        Ok(())
    }

    fn update(&mut self, mut updates: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        if updates.len() != self.labels.len() {
            return Err(Error::invalid(
                "partition",
                format!(
                    "set up for {} parameters, got {}; call init first",
                    self.labels.len(),
                    updates.len()
                ),
            ));
        }
        for group in &mut self.groups {
            updates = group.update(updates, info)?;
        }
        Ok(updates)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        for (k, g) in self.groups.iter().enumerate() {
            g.inner.save(&format!("{prefix}g{k}."), state);
        }
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        for (k, g) in self.groups.iter_mut().enumerate() {
            g.inner.load(&format!("{prefix}g{k}."), state)?;
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
/// keeps state for just those, saved under `{prefix}inner.`; with none
/// selected and [`Unmasked::PassThrough`] it is not called); the others are
/// passed through or zeroed as [`Unmasked`] says. The mask is computed from
/// the model's layout at `init`.
pub struct Masked {
    inner: Box<dyn Transform>,
    masker: Labeler<bool>,
    unmasked: Unmasked,
    selected: Vec<usize>,
    n: usize,
}

impl Masked {
    /// `inner` on the parameters where `masker(layout)` is true.
    pub fn new(
        inner: impl Transform + 'static,
        masker: impl Fn(&ModelLayout) -> Result<Vec<bool>> + Send + 'static,
        unmasked: Unmasked,
    ) -> Masked {
        Masked::boxed(Box::new(inner), Box::new(masker), unmasked)
    }

    /// [`Masked::new`] for an inner stage and a masker already boxed.
    fn boxed(inner: Box<dyn Transform>, masker: Labeler<bool>, unmasked: Unmasked) -> Masked {
        Masked {
            inner,
            masker,
            unmasked,
            selected: Vec::new(),
            n: 0,
        }
    }

    /// Sets up for `layout` with `mask` in place of the masker's: the inner
    /// stage is initialised for the selected tensors alone.
    fn init_with_mask(&mut self, layout: &ModelLayout, mask: &[bool]) -> Result<()> {
        self.selected = (0..layout.len()).filter(|&i| mask[i]).collect();
        self.n = layout.len();
        self.inner.init(&layout.select(&self.selected))
    }

    /// `inner` on the parameters where `mask` is true (from [`by_name`], say).
    pub fn with_mask(inner: impl Transform + 'static, mask: Vec<bool>, unmasked: Unmasked) -> Masked {
        Masked::new(inner, move |_| Ok(mask.clone()), unmasked)
    }

    /// `inner` on the tensors whose role satisfies `keep`. Fails at `init`
    /// for a layout without roles.
    pub fn by_role(
        inner: impl Transform + 'static,
        keep: impl Fn(Role) -> bool + Send + 'static,
        unmasked: Unmasked,
    ) -> Masked {
        Masked::new(
            inner,
            move |layout| Ok(roles_of(layout, "Masked::by_role")?.into_iter().map(&keep).collect()),
            unmasked,
        )
    }

    /// `inner` on the tensors the training loop trains (the layout's
    /// trained flags): with [`Unmasked::Zero`], an optimizer that spends no
    /// work and keeps no state on frozen tensors and running statistics.
    pub fn trained_only(inner: impl Transform + 'static, unmasked: Unmasked) -> Masked {
        Masked::new(inner, |layout| Ok(layout.trained().to_vec()), unmasked)
    }
}

impl Transform for Masked {
    fn init(&mut self, layout: &ModelLayout) -> Result<()> {
        let mask = labels_for(&self.masker, layout, "masked")?;
        self.init_with_mask(layout, &mask)
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
        if self.selected.is_empty() && self.unmasked == Unmasked::PassThrough {
            return Ok(updates); // nothing selected: the inner stage is not called
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
                *u = u.zeros_like()?;
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
    use ferrograd_engine::Shape;

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
        let group_of = |r: Role, _: &ModelLayout| match r {
            Role::Weight(_) => 0,
            Role::Bias(_) => 1,
            Role::BnScale(_) | Role::BnShift(_) => 2,
            Role::RunningMean(_) | Role::RunningVar(_) => 3,
        };
        let groups = lrs.iter().map(|&lr| sgd(lr)).collect();
        let mut opt = ChainOptimizer::new("groups", chain![Partition::by_role(groups, group_of)]);
        let layout = ModelLayout::task_model(&shapes).unwrap();
        opt.init_state(0, &layout).unwrap();
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::zeros(s.clone(), ferrograd_engine::DType::F64).unwrap())
            .collect();
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| p.ones_like())
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let updates = opt.step(&params, &grads, &StepContext::default()).unwrap();
        let roles = layout.roles().unwrap();
        for (i, u) in updates.iter().enumerate() {
            assert_eq!(u.shape(), &shapes[i]);
            let expected = -lrs[group_of(roles[i], &layout)];
            assert!(u.to_vec::<f64>().unwrap().iter().all(|&v| v == expected), "tensor {i}");
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
        let grads: Vec<Tensor> = params
            .iter()
            .map(|p| p.mul_scalar(0.5))
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        let ctx = StepContext::default();
        let mut a = build();
        a.init_state(0, &ModelLayout::any(&shapes)).unwrap();
        let u = a.step(&params, &grads, &ctx).unwrap();
        // Adam's first step is lr in size: 0.01 for parameters 0 and 2, 0.1 for 1.
        assert!((u[0].to_vec::<f64>().unwrap()[0] + 0.01).abs() < 1e-6);
        assert!((u[1].to_vec::<f64>().unwrap()[0] + 0.1).abs() < 1e-6);
        assert!((u[2].to_vec::<f64>().unwrap()[0] + 0.01).abs() < 1e-6);
        let state = a.state();
        assert!(state.tensors.contains_key("0.g0.0.m.0") && state.tensors.contains_key("0.g1.0.m.1"));
        let mut b = build();
        b.init_state(0, &ModelLayout::any(&shapes)).unwrap();
        b.load_state(&state).unwrap();
        let ua = a.step(&params, &grads, &ctx).unwrap();
        let ub = b.step(&params, &grads, &ctx).unwrap();
        for (x, y) in ua.iter().zip(&ub) {
            assert_eq!(x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
        }
    }

    #[test]
    fn partition_rejects_bad_labels() {
        let mut p = Partition::with_labels(vec![sgd(1.0)], vec![0, 1]);
        assert!(p.init(&ModelLayout::any(&[[1].into(), [1].into()])).is_err());
        let mut p = Partition::with_labels(vec![sgd(1.0)], vec![0]);
        assert!(p.init(&ModelLayout::any(&[[1].into(), [1].into()])).is_err());
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
            m.init(&ModelLayout::any(&shapes)).unwrap();
            let out = m.update(grads.clone(), &info).unwrap();
            assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![other; 2]);
            assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![-0.5; 2]);
        }
        // By role: only the running statistics zeroed.
        let shapes = task_shapes(1);
        let mut m = Masked::by_role(ScaleByLr::new(Constant(1.0)), Role::is_parameter, Unmasked::Zero);
        m.init(&ModelLayout::task_model(&shapes).unwrap()).unwrap();
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
        let sums: Vec<f64> = out.iter().map(|u| u.sum_all().unwrap().to_scalar().unwrap()).collect();
        assert_eq!(sums[4..], [-256.0, -256.0, 0.0, 0.0]);
        assert_eq!(sums[0], -256.0);
    }

    #[test]
    fn trained_only_touches_just_the_tensors_the_layout_trains() {
        let shapes = task_shapes(2);
        let layout = ModelLayout::task_model(&shapes).unwrap();
        let mut m = Masked::trained_only(ScaleByLr::new(Constant(1.0)), Unmasked::Zero);
        m.init(&layout).unwrap();
        let params: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::ones(s.clone(), ferrograd_engine::DType::F64).unwrap())
            .collect();
        let ctx = StepContext::default();
        let info = StepInfo {
            count: 1,
            params: &params,
            ctx: &ctx,
        };
        let out = m.update(params.clone(), &info).unwrap();
        for (i, u) in out.iter().enumerate() {
            let expected = if layout.trained()[i] { -1.0 } else { 0.0 };
            assert!(u.to_vec::<f64>().unwrap().iter().all(|&v| v == expected), "tensor {i}");
        }
        // Two hidden layers: only Linear 0 and BatchNorm 0's scale and shift train.
        assert_eq!(layout.trained().iter().filter(|&&t| t).count(), 4);
    }

    #[test]
    fn grouping_by_role_without_roles_says_what_to_do() {
        let mut p = Partition::by_role(vec![sgd(1.0)], |_, _| 0);
        let err = p.init(&ModelLayout::any(&[[1].into()])).unwrap_err().to_string();
        assert!(err.contains("roles") && err.contains("by name"), "{err}");
    }
}
