//! Embeds the guardians' web app (`web/dist` at the repository root, built by
//! `npm run build` in `web/` and committed) into the hub, so the hub stays one file.
//! Writes `$OUT_DIR/web_assets.rs`: one entry per file, with its gzip copy (`NAME.gz`,
//! made by the same build) when there is one. No npm at cargo build time: the build
//! only reads what is committed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let dist = manifest.join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dist) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "gz"))
            .collect(),
        Err(_) => {
            println!(
                "cargo:warning=web/dist not found: the hub is built without the web app (run `npm ci && npm run build` in web/)"
            );
            Vec::new()
        }
    };
    files.sort();

    let mut out = String::from(
        "/// Files of web/dist, as found at build time.\npub static ASSETS: &[Asset] = &[\n",
    );
    for file in &files {
        let name = file.file_name().unwrap().to_str().expect("UTF-8 file name");
        let gz = PathBuf::from(format!("{}.gz", file.display()));
        let gzip = if gz.is_file() {
            format!("Some(include_bytes!({:?}))", abs(&gz))
        } else {
            "None".to_owned()
        };
        writeln!(
            out,
            "    Asset {{ name: {name:?}, body: include_bytes!({:?}), gzip: {gzip} }},",
            abs(file)
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("web_assets.rs");
    std::fs::write(dest, out).unwrap();
}

fn abs(p: &Path) -> String {
    p.canonicalize().unwrap().display().to_string()
}
