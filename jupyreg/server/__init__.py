"""``mlflow server --app-name jupyreg``: MLflow's basic-auth app plus jupyreg's lifecycle,
enforced on the server (DESIGN.md §6)."""
