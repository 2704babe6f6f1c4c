//! The optimizer playground's answers: the six surfaces with their contour
//! grids, the catalog's optimizers with their hyperparameters, and paths
//! computed by [`viz::trajectory_observed`] with each step's optimizer
//! state, read from the optimizer itself.

use super::http::ApiError;
use ferrograd::optim::{catalog, HpSpec, HyperParams, OptimizerState};
use ferrograd::race::grid::{canonical_number, Entrant};
use ferrograd::viz::{self, Function, StepView};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The most steps a playground path may take.
pub const MAX_STEPS: usize = 5000;
/// The most optimizers one playground request may compare.
pub const MAX_OPTIMIZERS: usize = 8;
/// The contour grid's columns and rows.
const GRID_SIZE: usize = 120;
/// The largest coordinate a start point may have.
const MAX_START: f64 = 1e3;

/// `GET /api/functions`: every surface with its formula, window, minima,
/// default start and suggested learning rate.
pub fn functions() -> Value {
    let list: Vec<Value> = Function::ALL
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "formula": f.formula(),
                "window": f.window(),
                "minima": f.minima(),
                "start": f.default_start(),
                "suggested_lr": f.suggested_lr(),
            })
        })
        .collect();
    Value::Array(list)
}

/// `GET /api/contour?function=NAME`: `f` on a grid over the function's
/// window, row by row from the bottom (`y` ascending).
pub fn contour(name: &str) -> Result<Value, ApiError> {
    let function = parse_function(name)?;
    let window = function.window();
    let values = function
        .grid(window, GRID_SIZE, GRID_SIZE)
        .map_err(|e| ApiError::internal(format!("cannot evaluate {name} on its grid: {e}")))?;
    Ok(json!({ "function": name, "window": window, "cols": GRID_SIZE, "rows": GRID_SIZE, "values": values }))
}

/// `GET /api/optimizers`: the catalog, each hyperparameter with its
/// default, meaning and allowed values (the page builds its controls from
/// this), and the update equation where the page has one.
pub fn optimizers() -> Value {
    let list: Vec<Value> = catalog::all()
        .into_iter()
        .map(|info| {
            json!({
                "name": info.name,
                "about": info.about,
                "equation": equation(info.name),
                "hyperparams": info.hyperparams.iter().map(hp_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(list)
}

fn hp_json(spec: &HpSpec) -> Value {
    let (min, min_open, max, max_open, integer) = bounds(spec);
    json!({
        "name": spec.name,
        "default": spec.default,
        "about": spec.about,
        "allowed": spec.allowed(),
        "min": min,
        "min_exclusive": min_open,
        "max": max,
        "max_exclusive": max_open,
        "integer": integer,
    })
}

/// The bounds of a declared domain as the page's controls use them:
/// `(min, min exclusive, max, max exclusive, whole numbers only)`.
fn bounds(spec: &HpSpec) -> (Option<f64>, bool, Option<f64>, bool, bool) {
    use ferrograd::optim::HpDomain::*;
    let (min, min_open, max, max_open, integer) = match spec.domain {
        Real => (None, false, None, false, false),
        NonNegative => (Some(0.0), false, None, false, false),
        Positive => (Some(0.0), true, None, false, false),
        DecayRate => (Some(0.0), false, Some(1.0), true, false),
        Fraction | Flag => (Some(0.0), false, Some(1.0), false, spec.domain == Flag),
        PositiveFraction => (Some(0.0), true, Some(1.0), false, false),
        WholeNumber => (Some(0.0), false, None, false, true),
        Count => (Some(1.0), false, None, false, true),
    };
    (min, min_open, spec.max.or(max), max_open, integer)
}

/// The update rule of the best-known optimizers, as the side panel shows
/// it (`g` the gradient, `t` the step, `η` the learning rate `lr`). The
/// others show their catalog description.
pub fn equation(name: &str) -> Option<&'static str> {
    Some(match name {
        "sgd" => "Δθ = −η · clip(g, ±clip)",
        "sgdm" => "b ← μ b + g;  Δθ = −η b",
        "adam" => "m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  Δθ = −η m̂ / (√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)",
        "clipped_adam" => "g ← clip(g, ±clip);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  Δθ = −η m̂ / (√v̂ + ε)",
        "adamw" => "Adam's m, v;  Δθ = −η (m̂ / (√v̂ + ε) + λ θ)",
        "rmsprop" => "v ← α v + (1−α) g²;  Δθ = −η g / (√v + ε)",
        "adagrad" => "s ← s + g²;  Δθ = −η g / (√s + ε)",
        "lion" => "c = β₁m + (1−β₁)g;  Δθ = −η (sign(c) + λθ);  m ← β₂m + (1−β₂)g",
        _ => return None,
    })
}

fn parse_function(name: &str) -> Result<Function, ApiError> {
    Function::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A playground request: which surface, where to start, how many steps
/// and which optimizers with which hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaygroundRequest {
    function: Function,
    start: (f64, f64),
    steps: usize,
    entrants: Vec<Entrant>,
}

impl PlaygroundRequest {
    /// Reads and checks a `POST /api/playground` body:
    /// `{"function", "start": [x, y], "steps", "optimizers": [{"name", "hp": {key: value}}]}`.
    pub fn parse(body: &Value) -> Result<PlaygroundRequest, ApiError> {
        let function = parse_function(body["function"].as_str().unwrap_or_default())?;
        let steps = body["steps"]
            .as_u64()
            .filter(|s| (1..=MAX_STEPS as u64).contains(s))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "steps must be a whole number from 1 to {MAX_STEPS}, got {}",
                    body["steps"]
                ))
            })? as usize;
        let start = match &body["start"] {
            Value::Null => function.default_start(),
            given => parse_start(given)?,
        };
        let list = body["optimizers"]
            .as_array()
            .filter(|l| (1..=MAX_OPTIMIZERS).contains(&l.len()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "optimizers must be a list of 1 to {MAX_OPTIMIZERS} {{\"name\", \"hp\"}} objects"
                ))
            })?;
        let entrants = list.iter().map(parse_entrant).collect::<Result<_, _>>()?;
        Ok(PlaygroundRequest {
            function,
            start,
            steps,
            entrants,
        })
    }
}

fn parse_start(given: &Value) -> Result<(f64, f64), ApiError> {
    let coordinate = |i: usize| given.get(i).and_then(Value::as_f64).filter(|c| c.abs() <= MAX_START);
    match (given.as_array().map(Vec::len), coordinate(0), coordinate(1)) {
        (Some(2), Some(x), Some(y)) => Ok((x, y)),
        _ => Err(ApiError::bad_request(format!(
            "start must be [x, y] with |x|, |y| <= {MAX_START}, got {given}"
        ))),
    }
}

/// One `{"name", "hp"}` object as an entrant; each value is checked against
/// the catalog's declaration. Values equal to the defaults are left out of
/// the entrant, so its label names only what was changed.
pub fn parse_entrant(item: &Value) -> Result<Entrant, ApiError> {
    let name = item["name"].as_str().unwrap_or_default();
    let info = catalog::lookup(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut values = HyperParams::defaults(info);
    let mut overrides = BTreeMap::new();
    let hp = match &item["hp"] {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map.clone(),
        other => {
            return Err(ApiError::bad_request(format!(
                "hp of {name} must be an object, got {other}"
            )))
        }
    };
    for (key, value) in &hp {
        let number = value
            .as_f64()
            .ok_or_else(|| ApiError::bad_request(format!("{name}.{key} must be a number, got {value}")))?;
        values
            .set(key, number)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let default = HyperParams::defaults(info).get(key).unwrap_or(f64::NAN);
        if number.to_bits() != default.to_bits() {
            overrides.insert(key.clone(), canonical_number(number));
        }
    }
    Ok(Entrant {
        optimizer: name.to_string(),
        hp: overrides,
    })
}

/// `POST /api/playground`: each optimizer's path with, for every step, the
/// gradient, the update, the update per unit of gradient and the
/// optimizer's state right after the step.
pub fn playground(request: &PlaygroundRequest) -> Result<Value, ApiError> {
    let paths = request
        .entrants
        .iter()
        .map(|entrant| observed_path(request, entrant))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "function": request.function.name(),
        "start": [request.start.0, request.start.1],
        "steps": request.steps,
        "paths": paths,
    }))
}

fn observed_path(request: &PlaygroundRequest, entrant: &Entrant) -> Result<Value, ApiError> {
    let mut steps = Vec::with_capacity(request.steps);
    let path = viz::trajectory_observed(request.function, entrant, request.start, request.steps, |view| {
        steps.push(step_json(&view))
    })
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut value = serde_json::to_value(&path).map_err(|e| ApiError::internal(e.to_string()))?;
    value["equation"] = json!(equation(&entrant.optimizer));
    value["step_states"] = Value::Array(steps);
    Ok(value)
}

fn step_json(view: &StepView<'_>) -> Value {
    let per_unit = |i: usize| (view.gradient[i] != 0.0).then(|| view.update[i] / view.gradient[i]);
    json!({
        "step": view.step,
        "gradient": view.gradient,
        "update": view.update,
        "update_per_gradient": [per_unit(0), per_unit(1)],
        // The playground runs on the CPU, where reading a state cannot fail.
        "state": state_json(&view.optimizer.state()).unwrap_or_else(|e| json!({ "error": e.to_string() })),
    })
}

/// An optimizer's state as `{"tensors": {name: [values]}, "counters": {name: n}}`.
pub fn state_json(state: &OptimizerState) -> ferrograd::engine::Result<Value> {
    let tensors: BTreeMap<&str, Vec<f64>> = state
        .tensors
        .iter()
        .map(|(name, tensor)| Ok((name.as_str(), tensor.to_vec_f64()?)))
        .collect::<ferrograd::engine::Result<_>>()?;
    Ok(json!({ "tensors": tensors, "counters": state.counters }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_out_of_range_are_refused_with_the_reason() {
        let base = json!({"function": "rosenbrock", "steps": 10, "optimizers": [{"name": "adam"}]});
        assert!(PlaygroundRequest::parse(&base).is_ok());
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            body[key] = value;
            PlaygroundRequest::parse(&body).unwrap_err().message
        };
        assert!(with("steps", json!(1_000_000_000u64)).contains("steps"));
        assert!(with("function", json!("nope")).contains("nope"));
        assert!(with("optimizers", json!([{"name": "nope"}])).contains("unknown optimizer"));
        assert!(with("optimizers", json!([{"name": "adam", "hp": {"lr": -1}}])).contains("lr"));
        assert!(with("start", json!([1e9, 0])).contains("start"));
    }
}
