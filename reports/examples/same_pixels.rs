//! Whether two reports' PNG charts are the same pictures: every
//! `charts/*.png` of the first report directory decoded and compared,
//! pixel for pixel, with the second's (the files may differ: PNG is
//! lossless, only the pictures must agree).
//!
//! `cargo run -p reports --example same_pixels -- OLD_REPORT NEW_REPORT`
//! prints one line per chart and exits non-zero when any chart's size or
//! pixels differ, or a chart is missing from either side.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A PNG's width, height, color type and pixels.
fn decode(path: &Path) -> Result<(u32, u32, png::ColorType, Vec<u8>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    buf.truncate(info.buffer_size());
    Ok((info.width, info.height, info.color_type, buf))
}

/// The `charts/*.png` file names of a report directory, sorted.
fn pngs(dir: &Path) -> Result<Vec<String>, String> {
    let charts = dir.join("charts");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&charts).map_err(|e| format!("{}: {e}", charts.display()))? {
        let name = entry
            .map_err(|e| format!("{}: {e}", charts.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".png") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [old, new] = &args[..] else {
        eprintln!("usage: same_pixels OLD_REPORT_DIR NEW_REPORT_DIR");
        return ExitCode::from(2);
    };
    let run = || -> Result<bool, String> {
        let names = pngs(old)?;
        let mut same = names == pngs(new)?;
        if !same {
            println!("the two reports have different chart files");
        }
        for name in &names {
            let a = decode(&old.join("charts").join(name))?;
            let b = match decode(&new.join("charts").join(name)) {
                Ok(b) => b,
                Err(e) => {
                    println!("{name}: {e}");
                    same = false;
                    continue;
                }
            };
            let differing = a.3.iter().zip(&b.3).filter(|(x, y)| x != y).count();
            let ok = (a.0, a.1, a.2) == (b.0, b.1, b.2) && a.3.len() == b.3.len() && differing == 0;
            println!(
                "{name}: {}x{} {} ({differing} bytes differ)",
                a.0,
                a.1,
                if ok { "same pixels" } else { "DIFFERENT" }
            );
            same &= ok;
        }
        Ok(same)
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
