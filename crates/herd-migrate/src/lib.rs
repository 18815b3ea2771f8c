//! Live migration without shared storage: a pure planner (facts in, a plan or every refusal out) and an executor that runs the plan against libvirt and undoes completed steps on failure.
