//! The kernel mirror punt: local traffic the dataplane does not handle
//! itself (BGP, BFD, ssh, ...) goes to the port's TAP, where the kernel
//! and FRR see it as on any Linux router. It is where unclaimed local
//! traffic goes by default.

mod kernel;

pub use kernel::PuntKernel;

use crate::registry::Registry;

pub fn register(r: &mut Registry) {
    r.local_default("punt-kernel");
    r.node(|_| PuntKernel);
}
