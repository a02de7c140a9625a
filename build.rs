//! Bundles an organisation profile into the binary when `PASSERELLE_PROFILE` names a JSON file at
//! build time, so that a cooperative can ship a build where members type nothing.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=PASSERELLE_PROFILE");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bundled = match env::var("PASSERELLE_PROFILE") {
        Ok(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={path}");
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("PASSERELLE_PROFILE={path}: {e}"))
        }
        _ => String::new(),
    };
    fs::write(out.join("bundled-profile.json"), bundled).expect("write bundled profile");
}
