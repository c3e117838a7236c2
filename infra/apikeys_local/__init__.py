"""Docker-free local API Gateway + Lambda + DynamoDB, driven by template.yaml."""
