//! `parse_csv` on arbitrary text with a target column chosen by the first
//! byte (by index, or by a name taken from the header): never panics, and a
//! parsed table's shapes agree.
#![no_main]

use ferrograd_datasets::{parse_csv, TargetColumn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let target = if selector & 0x80 == 0 {
        TargetColumn::Index(usize::from(selector % 8))
    } else {
        let header = text.lines().next().unwrap_or("");
        let fields: Vec<&str> = header.split(',').collect();
        let name = fields[usize::from(selector) % fields.len()].trim().trim_matches('"');
        TargetColumn::Name(name.to_string())
    };
    let targets = if selector & 0x40 != 0 {
        vec![target, TargetColumn::Index(usize::from(selector >> 3) % 4)]
    } else {
        vec![target]
    };
    if let Ok(table) = parse_csv(&text, &targets) {
        assert_eq!(table.inputs.rows(), table.targets.rows());
        assert_eq!(table.inputs.cols(), table.input_names.len());
        assert_eq!(table.targets.cols(), table.target_names.len());
        assert_eq!(table.targets.cols(), targets.len());
        assert!(table.inputs.cols() > 0);
    }
});
