//! Muon: Keller Jordan, Yuchen Jin, Vlado Boza, Jiacheng You, Franz Cesista,
//! Laker Newhouse and Jeremy Bernstein, "Muon: An optimizer for hidden layers
//! in neural networks" (2024), <https://kellerjordan.github.io/posts/muon/>,
//! reference code <https://github.com/KellerJordan/Muon>.
//!
//! For every matrix (rank-2 tensor):
//!
//! ```text
//! m_t = mu m_{t-1} + (1 - mu) g_t
//! u_t = (1 - mu) g_t + mu m_t                   (Nesterov; u_t = m_t without)
//! O_t = NewtonSchulz5(u_t)                      (approximately U V^T of u_t = U S V^T)
//! update = -lr * (O_t * max(1, rows / cols)^0.5 + wd * W)
//! ```
//!
//! `NewtonSchulz5` ([`newton_schulz5`]) works on `X = u / (|u|_F + 1e-7)`
//! (transposed first when rows > cols, so `X X^T` is the smaller Gram matrix)
//! and repeats `A = X X^T; X = a X + (b A + c A A) X` with the quintic
//! coefficients `(a, b, c) = (3.4445, -4.7750, 2.0315)`, 5 times by default.
//! It runs in the parameter's dtype (the reference uses bfloat16).
//!
//! **Scaling.** The factor `max(1, rows/cols)^0.5` is the one in the reference
//! repository's `muon_update` (rows = `size(-2)`, cols = `size(-1)`): it gives
//! tall matrices an RMS update comparable to wide ones. (Moonshot's "Muon is
//! Scalable for LLM Training", Liu et al. 2025, uses `0.2 sqrt(max(rows,
//! cols))` instead to match AdamW's RMS; not used here.)
//!
//! Tensors that are not matrices (biases, BatchNorm vectors) get AdamW:
//! `update = -adam_lr * ((m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * p)`,
//! with the reference's auxiliary-Adam defaults (lr 3e-4, betas (0.9, 0.95),
//! eps 1e-10). Matrix defaults: lr 0.02, momentum 0.95, Nesterov, 5 steps,
//! weight decay 0. The reference also sends the first and last layers to
//! AdamW; this optimizer sees tensors without roles, so every matrix gets Muon.

use crate::basic::ema;
use crate::transform::{ChainOptimizer, Slots, StepInfo, Transform};
use crate::OptimizerState;
use ferrograd_engine::{Error, Result, Tensor};

/// The quintic Newton-Schulz coefficients of the reference implementation.
pub const NS_COEFFICIENTS: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);

/// Approximately orthogonalises the matrix `g` (its polar factor `U V^T`) by
/// `steps` quintic Newton-Schulz iterations; see the [module docs](self).
pub fn newton_schulz5(g: &Tensor, steps: usize) -> Result<Tensor> {
    let &[rows, cols] = g.dims() else {
        return Err(Error::invalid(
            "newton_schulz5",
            format!("needs a matrix, got shape {}", g.shape()),
        ));
    };
    let (a, b, c) = NS_COEFFICIENTS;
    let tall = rows > cols;
    let x = if tall { g.t()? } else { g.clone() };
    let norm = x.square()?.sum_all()?.to_scalar()?.sqrt();
    let mut x = x.mul_scalar(1.0 / (norm + 1e-7))?;
    for _ in 0..steps {
        let gram = x.matmul_t(false, &x, true)?;
        let poly = gram.mul_scalar(b)?.add(&gram.matmul(&gram)?.mul_scalar(c)?)?;
        x = Ok(x.mul_scalar(a)?.add(&poly.matmul(&x)?)?)?;
    }
    if tall {
        x.t()
    } else {
        Ok(x)
    }
}

/// Muon's hyperparameters; [`Default`] gives the reference defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MuonConfig {
    /// Learning rate of the matrices.
    pub lr: f64,
    /// Momentum of the matrices.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Newton-Schulz iterations.
    pub ns_steps: usize,
    /// Decoupled weight decay, for both groups (times each group's lr).
    pub weight_decay: f64,
    /// AdamW learning rate for the other tensors.
    pub adam_lr: f64,
    /// AdamW first-moment decay.
    pub adam_beta1: f64,
    /// AdamW second-moment decay.
    pub adam_beta2: f64,
    /// AdamW denominator stabiliser.
    pub adam_eps: f64,
}

impl Default for MuonConfig {
    fn default() -> Self {
        MuonConfig {
            lr: 0.02,
            momentum: 0.95,
            nesterov: true,
            ns_steps: 5,
            weight_decay: 0.0,
            adam_lr: 3e-4,
            adam_beta1: 0.9,
            adam_beta2: 0.95,
            adam_eps: 1e-10,
        }
    }
}

/// The whole Muon update (both groups, learning rates included).
#[derive(Debug, Clone)]
pub struct MuonUpdate {
    /// The hyperparameters.
    pub config: MuonConfig,
    m: Slots,
    v: Slots,
}

impl MuonUpdate {
    /// Muon with these hyperparameters.
    pub fn new(config: MuonConfig) -> MuonUpdate {
        MuonUpdate {
            config,
            m: Slots::default(),
            v: Slots::default(),
        }
    }
}

impl Transform for MuonUpdate {
    fn update(&mut self, grads: Vec<Tensor>, info: &StepInfo<'_>) -> Result<Vec<Tensor>> {
        let c = self.config;
        let t = crate::step_exponent(info.count);
        let mut out = Vec::with_capacity(grads.len());
        for (i, g) in grads.iter().enumerate() {
            let p = &info.params[i];
            if let &[rows, cols] = g.dims() {
                let m = ema(self.m.get(i, g)?, g, c.momentum)?;
                let u = if c.nesterov { ema(&m, g, c.momentum)? } else { m.clone() };
                let scale = (rows as f64 / cols as f64).max(1.0).sqrt();
                let o = newton_schulz5(&u, c.ns_steps)?.mul_scalar(scale)?;
                out.push(o.add(&p.mul_scalar(c.weight_decay)?)?.mul_scalar(-c.lr)?);
                self.m.set(i, m);
            } else {
                let (c1, c2) = (1.0 - c.adam_beta1.powi(t), 1.0 - c.adam_beta2.powi(t));
                let m = ema(self.m.get(i, g)?, g, c.adam_beta1)?;
                let v = ema(self.v.get(i, g)?, &g.square()?, c.adam_beta2)?;
                let dir = m
                    .div_scalar(c1)?
                    .div(&v.div_scalar(c2)?.sqrt()?.add_scalar(c.adam_eps)?)?;
                out.push(dir.add(&p.mul_scalar(c.weight_decay)?)?.mul_scalar(-c.adam_lr)?);
                self.m.set(i, m);
                self.v.set(i, v);
            }
        }
        Ok(out)
    }

    fn save(&self, prefix: &str, state: &mut OptimizerState) {
        self.m.save(prefix, "m", state);
        self.v.save(prefix, "v", state);
    }

    fn load(&mut self, prefix: &str, state: &OptimizerState) -> Result<()> {
        self.m.load(prefix, "m", state);
        self.v.load(prefix, "v", state);
        Ok(())
    }
}

/// Muon with AdamW for non-matrix tensors.
pub fn muon(config: MuonConfig) -> ChainOptimizer {
    ChainOptimizer::new("muon", crate::chain![MuonUpdate::new(config)])
}
