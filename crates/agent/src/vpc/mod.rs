//! Vpc objects: a VRF each, with its own FIB. The default VPC is VRF 0
//! and always exists.

use weir_dataplane::VrfId;
use weir_model::VpcSpec;

use crate::kind::Apply;
use crate::{Agent, AgentError, DEFAULT_VPC};

pub struct Vpc;

impl Apply for Vpc {
    type Spec = VpcSpec;
    /// The VRF the VPC got.
    type Metadata = VrfId;

    fn create(agent: &mut Agent, name: &str, _spec: &VpcSpec) -> Result<VrfId, AgentError> {
        if let Some(&id) = agent.vpcs.get(name) {
            return Ok(id);
        }
        let used: Vec<VrfId> = agent.vpcs.values().copied().collect();
        let id = (1..VrfId::MAX)
            .find(|i| !used.contains(i))
            .ok_or_else(|| AgentError::Invalid("no free VRF id".into()))?;
        agent.control.add_vrf(id);
        agent.control.commit();
        agent.vpcs.insert(name.to_string(), id);
        Ok(id)
    }

    /// Nothing of a VPC's spec changes its VRF.
    fn update(
        _agent: &mut Agent,
        _name: &str,
        _old: &VpcSpec,
        _new: &VpcSpec,
        _vrf: &mut VrfId,
    ) -> Result<(), AgentError> {
        Ok(())
    }

    /// Fails while interfaces are in it (their routes go with the VRF).
    fn delete(
        agent: &mut Agent,
        name: &str,
        _spec: &VpcSpec,
        vrf: &VrfId,
    ) -> Result<(), AgentError> {
        if name == DEFAULT_VPC {
            return Ok(());
        }
        agent.control.del_vrf(*vrf)?;
        agent.control.commit();
        agent.vpcs.remove(name);
        Ok(())
    }
}
