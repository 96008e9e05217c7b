"""Execution strategies (team now; parallel, creative and recall later) behind the coordinator."""
