//! Classic 2-D test functions, written once with autograd [`Var`] ops so
//! that their values, gradients and Hessian-vector products all come from
//! ferrograd's own autodiff (in f64).

use super::VizError;
use crate::autograd::Var;
use crate::engine::{Result, Tensor};
use std::f64::consts::PI;

/// A 2-D test surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `(1 - x)^2 + 100 (y - x^2)^2`: a curved, flat-bottomed valley.
    Rosenbrock,
    /// Beale's function: sharp ridges, flat plateaus, minimum at (3, 0.5).
    Beale,
    /// Himmelblau's function: four global minima of value 0.
    Himmelblau,
    /// `x^2 - y^2`: a saddle at the origin, unbounded below along y.
    Saddle,
    /// `0.5 x^2 + 50 y^2`: a quadratic bowl with condition number 100.
    Quadratic,
    /// Rastrigin's function: a bowl covered in local minima.
    Rastrigin,
}

impl Function {
    /// Every function, in documentation order.
    pub const ALL: [Function; 6] = [
        Function::Rosenbrock,
        Function::Beale,
        Function::Himmelblau,
        Function::Saddle,
        Function::Quadratic,
        Function::Rastrigin,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Function::Rosenbrock => "rosenbrock",
            Function::Beale => "beale",
            Function::Himmelblau => "himmelblau",
            Function::Saddle => "saddle",
            Function::Quadratic => "quadratic",
            Function::Rastrigin => "rastrigin",
        }
    }

    /// The function named `name`, or an error listing the names.
    pub fn parse(name: &str) -> std::result::Result<Function, VizError> {
        Function::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
            VizError::Usage(format!(
                "unknown function {name:?}; choose one of: {}",
                names.join(", ")
            ))
        })
    }

    /// The formula, for titles and docs.
    pub fn formula(self) -> &'static str {
        match self {
            Function::Rosenbrock => "(1 - x)² + 100 (y - x²)²",
            Function::Beale => "(1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²",
            Function::Himmelblau => "(x² + y - 11)² + (x + y² - 7)²",
            Function::Saddle => "x² - y²",
            Function::Quadratic => "0.5 x² + 50 y²",
            Function::Rastrigin => "20 + x² + y² - 10 cos(2πx) - 10 cos(2πy)",
        }
    }

    /// The global minima (none for the saddle, which is unbounded below).
    pub fn minima(self) -> &'static [(f64, f64)] {
        match self {
            Function::Rosenbrock => &[(1.0, 1.0)],
            Function::Beale => &[(3.0, 0.5)],
            Function::Himmelblau => &[
                (3.0, 2.0),
                (-2.805_118_086_952_745, 3.131_312_518_250_573),
                (-3.779_310_253_377_747, -3.283_185_991_286_17),
                (3.584_428_340_330_492, -1.848_126_526_964_404),
            ],
            Function::Saddle => &[],
            Function::Quadratic | Function::Rastrigin => &[(0.0, 0.0)],
        }
    }

    /// The plotting window `((x_min, x_max), (y_min, y_max))`.
    pub fn window(self) -> ((f64, f64), (f64, f64)) {
        match self {
            Function::Rosenbrock => ((-2.0, 2.0), (-1.0, 3.0)),
            Function::Beale => ((-4.5, 4.5), (-4.5, 4.5)),
            Function::Himmelblau => ((-5.0, 5.0), (-5.0, 5.0)),
            Function::Saddle => ((-2.0, 2.0), (-2.0, 2.0)),
            Function::Quadratic => ((-10.0, 10.0), (-10.0, 10.0)),
            Function::Rastrigin => ((-5.12, 5.12), (-5.12, 5.12)),
        }
    }

    /// The learning rate `ferrograd viz` gives every optimizer when none is
    /// asked for: one at which Adam reaches a minimum from
    /// [`Function::default_start`] in a few hundred steps (the catalog's
    /// defaults are the papers' and PyTorch's, and most barely move on these
    /// scales).
    pub fn suggested_lr(self) -> f64 {
        match self {
            Function::Rosenbrock => 0.02,
            Function::Beale => 0.01,
            Function::Himmelblau => 0.05,
            Function::Saddle => 0.02,
            Function::Quadratic => 0.015,
            Function::Rastrigin => 0.05,
        }
    }

    /// A starting point that shows the function's difficulty.
    pub fn default_start(self) -> (f64, f64) {
        match self {
            Function::Rosenbrock => (-1.5, 2.5),
            Function::Beale => (1.0, 1.5),
            Function::Himmelblau => (0.0, 0.0),
            Function::Saddle => (-1.5, 0.01),
            Function::Quadratic => (-8.0, 6.0),
            Function::Rastrigin => (3.3, -2.7),
        }
    }

    /// The function applied elementwise to `x` and `y` (same shape).
    pub fn apply(self, x: &Var, y: &Var) -> Result<Var> {
        match self {
            Function::Rosenbrock => {
                let a = x.neg()?.add_scalar(1.0)?.square()?;
                let b = y.sub(&x.square()?)?.square()?.mul_scalar(100.0)?;
                a.add(&b)
            }
            Function::Beale => {
                let xy = x.mul(y)?;
                let xy2 = xy.mul(y)?;
                let xy3 = xy2.mul(y)?;
                let term = |xyk: &Var, c: f64| -> Result<Var> { xyk.sub(x)?.add_scalar(c)?.square() };
                term(&xy, 1.5)?.add(&term(&xy2, 2.25)?)?.add(&term(&xy3, 2.625)?)
            }
            Function::Himmelblau => {
                let a = x.square()?.add(y)?.sub_scalar(11.0)?.square()?;
                let b = x.add(&y.square()?)?.sub_scalar(7.0)?.square()?;
                a.add(&b)
            }
            Function::Saddle => x.square()?.sub(&y.square()?),
            Function::Quadratic => x.square()?.mul_scalar(0.5)?.add(&y.square()?.mul_scalar(50.0)?),
            Function::Rastrigin => {
                let wave = |v: &Var| v.square()?.sub(&v.mul_scalar(2.0 * PI)?.cos()?.mul_scalar(10.0)?);
                wave(x)?.add(&wave(y)?).map(|s| s.add_scalar(20.0))?
            }
        }
    }

    /// `f` at a point given as one tensor `[x, y]` (shape `[2]`, f64), as a
    /// graph node, so that it can be differentiated.
    pub fn at_point(self, point: &Var) -> Result<Var> {
        let x = point.narrow(0, 0, 1)?;
        let y = point.narrow(0, 1, 1)?;
        self.apply(&x, &y)?.sum_all()
    }

    /// `f(x, y)`.
    pub fn value(self, x: f64, y: f64) -> f64 {
        let point = Var::constant(point_tensor(x, y));
        self.at_point(&point)
            .and_then(|f| f.value().to_scalar())
            .expect("a 2-D test function evaluates at any point")
    }

    /// `f(x, y)` and its gradient, by reverse-mode autodiff.
    pub fn value_and_gradient(self, x: f64, y: f64) -> Result<(f64, [f64; 2])> {
        let point = Var::parameter(point_tensor(x, y));
        let f = self.at_point(&point)?;
        let grads = f.backward()?;
        let g = grads
            .get(&point)
            .map_or_else(|| Ok(vec![0.0, 0.0]), Tensor::to_vec_f64)?;
        Ok((f.value().to_scalar()?, [g[0], g[1]]))
    }

    /// Values on a `cols x rows` grid over `window` in one batched
    /// evaluation; row-major, row 0 at `y_min`.
    pub fn grid(self, window: ((f64, f64), (f64, f64)), cols: usize, rows: usize) -> Result<Vec<f64>> {
        let ((x0, x1), (y0, y1)) = window;
        let step = |lo: f64, hi: f64, n: usize, i: usize| lo + (hi - lo) * i as f64 / (n - 1).max(1) as f64;
        let mut xs = Vec::with_capacity(cols * rows);
        let mut ys = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for c in 0..cols {
                xs.push(step(x0, x1, cols, c));
                ys.push(step(y0, y1, rows, r));
            }
        }
        let x = Var::constant(Tensor::from_vec(xs, [cols * rows])?);
        let y = Var::constant(Tensor::from_vec(ys, [cols * rows])?);
        self.apply(&x, &y)?.value().to_vec_f64()
    }
}

/// The tensor `[x, y]` (f64).
pub fn point_tensor(x: f64, y: f64) -> Tensor {
    Tensor::from_vec(vec![x, y], [2]).expect("a [2] tensor from 2 values")
}
