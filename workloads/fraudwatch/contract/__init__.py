"""What the detector and the simulator agree on, owned by neither: regulatory constants
(`regulatory`) and where countries are (`locations`). The generator and the features both read
this package; the features never import the generator."""
