"""`make bench`: the modelship service side by side with baselines, under the same closed-loop load."""
