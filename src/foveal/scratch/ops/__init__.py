"""Ops: functions from tensors to a tensor, each with a hand-written backward rule."""
