//! Statistics, shapes and determinism of the RFF task generator.

use ferrograd_datasets::{generate, RffConfig, RffData, Split};

fn variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n
}

fn all_splits(data: &RffData) -> [&Split; 3] {
    [&data.train, &data.val, &data.test]
}

fn all_values<'a>(data: &'a RffData, pick: impl Fn(&'a Split) -> &'a [f64]) -> Vec<f64> {
    all_splits(data)
        .into_iter()
        .flat_map(|s| pick(s).iter().copied())
        .collect()
}

const SEEDS: [u64; 6] = [0, 1, 2, 3, 17, 12345];

#[test]
fn split_sizes_and_shapes_for_both_presets() {
    for (config, d_in, d_out) in [(RffConfig::default(), 1, 2), (RffConfig::readme_variant(), 8, 1)] {
        let data = generate(&config, 3).unwrap();
        for (split, n) in all_splits(&data).into_iter().zip([1000, 200, 250]) {
            assert_eq!(split.inputs.shape(), (n, d_in));
            assert_eq!(split.targets.shape(), (n, d_out));
            assert_eq!(split.clean.shape(), (n, d_out));
        }
        assert_eq!(config.n_total(), 1450);
        assert_eq!(data.function.frequencies().len(), d_out * 128 * d_in);
    }
}

#[test]
fn inputs_lie_in_minus_one_to_one_and_fill_it() {
    for config in [RffConfig::default(), RffConfig::readme_variant()] {
        let data = generate(&config, 11).unwrap();
        let xs = all_values(&data, |s| s.inputs.data());
        assert!(xs.iter().all(|&x| x > -1.0 && x <= 1.0));
        // Uniform on (-1, 1]: mean 0, variance 1/3. With >= 1450 draws the
        // standard errors are < 0.016 and < 0.007; allow about 5 of them.
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.08, "input mean {mean}");
        assert!(
            (variance(&xs) - 1.0 / 3.0).abs() < 0.035,
            "input variance {}",
            variance(&xs)
        );
    }
}

#[test]
fn signal_variance_is_about_one() {
    // Var f = 2/K * sum_k a_k^2 * E[cos^2] ~ 1 for each output; one function
    // realisation has relative spread ~ sqrt(2/K) ~ 0.125 plus low-frequency
    // terms, so average over seeds and outputs and allow 0.6..1.5.
    for config in [RffConfig::default(), RffConfig::readme_variant()] {
        let mut total = 0.0;
        let mut count = 0.0;
        for seed in SEEDS {
            let data = generate(&config, seed).unwrap();
            for d in 0..config.output_dims {
                let column: Vec<f64> = all_splits(&data)
                    .into_iter()
                    .flat_map(|s| s.clean.iter_rows().map(move |r| r[d]))
                    .collect();
                total += variance(&column);
                count += 1.0;
            }
        }
        let mean_var = total / count;
        assert!((0.6..1.5).contains(&mean_var), "signal variance {mean_var}");
    }
}

#[test]
fn noise_variance_is_noise_std_squared() {
    // 2900 noise draws per seed: the variance estimate's standard error is
    // 0.04 * sqrt(2 / 2900) ~ 0.001, so 0.035..0.045 is a ~5 sigma band.
    for seed in SEEDS {
        let data = generate(&RffConfig::default(), seed).unwrap();
        let y = all_values(&data, |s| s.targets.data());
        let f = all_values(&data, |s| s.clean.data());
        let noise: Vec<f64> = y.iter().zip(&f).map(|(y, f)| y - f).collect();
        let v = variance(&noise);
        assert!((0.035..0.045).contains(&v), "seed {seed}: noise variance {v}");
    }
}

#[test]
fn frequencies_use_one_over_lengthscale_squared() {
    // Components are N(0,1)/l^2: std 1/0.09 = 11.1 (the README's /l would give 3.3).
    // 128 * 8 = 1024 draws per seed: the std estimate is within ~5% of the truth.
    let data = generate(&RffConfig::readme_variant(), 5).unwrap();
    let std = variance(data.function.frequencies()).sqrt();
    assert!((9.9..12.3).contains(&std), "frequency std {std}");
    let phases = data.function.phases();
    assert!(phases.iter().all(|&b| b > 0.0 && b <= 2.0 * std::f64::consts::PI));
}

#[test]
fn clean_targets_are_the_function_of_the_inputs() {
    // Every row of every split, for both presets.
    for config in [RffConfig::default(), RffConfig::readme_variant()] {
        let data = generate(&config, 8).unwrap();
        for split in all_splits(&data) {
            for (x, clean) in split.inputs.iter_rows().zip(split.clean.iter_rows()) {
                assert_eq!(data.function.eval(x).unwrap(), clean);
            }
        }
    }
}

#[test]
fn same_seed_is_bit_identical_and_different_seeds_differ() {
    for config in [RffConfig::default(), RffConfig::readme_variant()] {
        let a = generate(&config, 42).unwrap();
        let b = generate(&config, 42).unwrap();
        let c = generate(&config, 43).unwrap();
        let bits = |d: &RffData| -> Vec<u64> {
            all_values(d, |s| s.targets.data())
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(a, b);
        assert_ne!(a.train.inputs, c.train.inputs);
        assert_ne!(a.function, c.function);
    }
}

#[test]
fn splits_do_not_repeat_samples() {
    // No input row appears twice, within a split or across the three.
    for config in [RffConfig::default(), RffConfig::readme_variant()] {
        let data = generate(&config, 2).unwrap();
        let mut seen = std::collections::HashSet::new();
        for split in all_splits(&data) {
            for row in split.inputs.iter_rows() {
                let bits: Vec<u64> = row.iter().map(|v| v.to_bits()).collect();
                assert!(seen.insert(bits), "input row {row:?} repeats");
            }
        }
        assert_eq!(seen.len(), config.n_total());
    }
}
