//! Network namespaces and veth pairs for tests and labs.
//!
//! One fixture for every test that needs real interfaces: `Netns::new`
//! creates a namespace with a unique name and deletes it on drop (even when
//! the test panics), `Veth` creates a pair between two namespaces, `exec`
//! and `spawn` run commands inside.

pub mod netns;
pub mod topology;

pub use netns::{unique_name, Error, Netns, Veth};
pub use topology::{Lab, Topology, TopologyError};
