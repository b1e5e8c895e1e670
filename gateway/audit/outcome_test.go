package audit

import (
	"testing"

	"github.com/meetguard/meetguard/policy"
)

// Shadow-mode records and the console's what-if name a policy decision with
// policy.Decision.Outcome; they must use the words admission records use,
// or a query for "deny" would miss them.
func TestDecisionWords_MatchPolicyOutcomes(t *testing.T) {
	for audit, pol := range map[string]string{
		DecisionAllow: policy.OutcomeAllow,
		DecisionLobby: policy.OutcomeLobby,
		DecisionDeny:  policy.OutcomeDeny,
	} {
		if audit != pol {
			t.Errorf("audit outcome %q, policy outcome %q", audit, pol)
		}
	}
}
