//! `weir lab up|down|exec|status FILE`: labs of network namespaces.

use std::path::PathBuf;

use weir_lab::{Netns, Topology};

#[derive(clap::Subcommand, Debug)]
pub enum LabCmd {
    /// Create the lab's namespaces, links, addresses and routes.
    Up { file: PathBuf },
    /// Remove the lab (fine if it is already gone).
    Down { file: PathBuf },
    /// Run a command in a node: weir lab exec FILE NODE -- CMD...
    Exec {
        file: PathBuf,
        node: String,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// Show which nodes exist and their addresses.
    Status { file: PathBuf },
}

pub fn run(cmd: LabCmd) -> i32 {
    let load = |f: &PathBuf| match Topology::load(f) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("weir lab: {e}");
            None
        }
    };
    match cmd {
        LabCmd::Up { file } => {
            let Some(t) = load(&file) else { return 2 };
            // A half-built lab from an earlier failure goes first.
            let _ = t.down();
            match t.up() {
                Ok(lab) => {
                    lab.persist();
                    print!("{}", t.status());
                    0
                }
                Err(e) => {
                    eprintln!("weir lab up: {e}");
                    1
                }
            }
        }
        LabCmd::Down { file } => {
            let Some(t) = load(&file) else { return 2 };
            match t.down() {
                Ok(v) => {
                    for n in v {
                        println!("removed {n}");
                    }
                    0
                }
                Err(e) => {
                    eprintln!("weir lab down: {e}");
                    1
                }
            }
        }
        LabCmd::Exec { file, node, cmd } => {
            let Some(t) = load(&file) else { return 2 };
            if !t.nodes.contains_key(&node) {
                eprintln!("weir lab exec: no node {node:?} in lab {}", t.lab);
                return 2;
            }
            let ns = Netns::existing(&t.netns_name(&node));
            let args: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
            match ns.command(args[0]).args(&args[1..]).status() {
                Ok(s) => s.code().unwrap_or(1),
                Err(e) => {
                    eprintln!("weir lab exec: {e}");
                    1
                }
            }
        }
        LabCmd::Status { file } => {
            let Some(t) = load(&file) else { return 2 };
            print!("{}", t.status());
            0
        }
    }
}
