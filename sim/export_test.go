package sim

// AgreementWorkedOut is Agreement without the answer it keeps between
// changes, for the spec that compares the two.
func (c *Cluster) AgreementWorkedOut() error { return c.agreement() }
