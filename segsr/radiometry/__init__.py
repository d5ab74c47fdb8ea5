"""The radiometric contract: how raw values become network values and back, and per-scene stretches for networks without one."""
