"""What D does to the plane: the raster of activation patterns, bit patterns and their ids, exact polygons,
region and diversity metrics, divergences. Reads the engine's nets; draws nothing."""
