package billing

// SetPaymentCommittedHook sets a function run right after a new payment is
// committed, before its terminal or gateway is asked; nil removes it.
func SetPaymentCommittedHook(f func()) { testHookPaymentCommitted = f }
