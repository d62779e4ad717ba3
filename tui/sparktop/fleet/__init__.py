"""Other boxes: hosts reached over SSH or `sparktop agent`, and llama.cpp RPC split serving."""
