"""Pure image code every stage shares: probe and end checks, perceptual hashes, image ops, row images."""
