"""The MuJoCo suite: env x preset x seed cells, run locally or on Ray, compared with published results."""
