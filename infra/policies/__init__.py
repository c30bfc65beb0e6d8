"""CrossGuard policy pack of modelship: `pulumi preview --policy-pack infra/policies`."""
