package audit

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the story of one meeting, built from the audit log: who got in
// and how, who was refused and why, who let whom in from the lobby, who was
// removed or banned, and the end-to-end key epochs.
type Report struct {
	Room         string
	Since, Until time.Time // the window asked for (zero: open)
	// Nodes are the gateway nodes whose records the report holds, in name
	// order ("" for records without a node id). With more than one, seq
	// numbers are per node and the timeline names each record's node.
	Nodes       []string
	FirstSeq    uint64 // of the first record in time (with several nodes: that record's node's seq)
	LastSeq     uint64
	First, Last time.Time
	Records     int
	Integrity   string // set by the caller, e.g. IntegritySummary(Verify(...))

	Admitted     []Admission
	Refused      []Refusal
	Lobby        []LobbyVisit
	Removals     []Moment // room.remove, room.ban, room.suspend
	RoomControls []Moment // room.lock, room.unlock, room.create, room.update, room.recreated
	Keys         []Moment // e2ee.*
	Changes      []Moment // policy and config reloads, gateway start and stop
	Timeline     []Moment
	// People are the display name and email of each subject the report
	// names, as the identity provider gave them (from decision inputs and
	// logins).
	People map[string]Person
}

// Admission is someone let into the meeting.
type Admission struct {
	Time           time.Time
	Node           string
	Seq            uint64
	Subject        string
	Role           string
	AdmittedBy     string // the host who admitted them from the lobby; "" when the policy allowed them
	Reasons        []string
	DecisionID     string
	PolicyRevision string
}

// Refusal is someone the policy denied.
type Refusal struct {
	Time           time.Time
	Node           string
	Seq            uint64
	Subject        string
	Reasons        []string
	DecisionID     string
	PolicyRevision string
	ClientIP       string
}

// LobbyVisit is someone who waited in the lobby and what became of them.
type LobbyVisit struct {
	Subject string
	Knocked time.Time
	Reasons []string // why the policy sent them there
	Outcome string   // "admitted", "turned away" or "still waiting"
	By      string   // the host who decided
	At      time.Time
	Reason  string // the host's reason for turning them away
}

// Moment is one line of the story.
type Moment struct {
	Time  time.Time
	Node  string
	Seq   uint64
	Event string
	Text  string
}

// ReportOptions select the meeting.
type ReportOptions struct {
	Room         string
	Since, Until time.Time
}

// contextEvents are not about one room but matter to every meeting they
// happen during.
func contextEvent(event string) bool {
	return strings.HasPrefix(event, "policy.") || strings.HasPrefix(event, "config.") || strings.HasPrefix(event, "gateway.")
}

// BuildReport reads files and tells the story of opts.Room in the window.
// Files may be the logs of several nodes: their records are told in time
// order (MergedReader).
func BuildReport(ctx context.Context, files []string, opts ReportOptions) (*Report, error) {
	r := &Report{Room: opts.Room, Since: opts.Since, Until: opts.Until, People: map[string]Person{}}
	window := Filter{Since: opts.Since, Until: opts.Until}
	room := Filter{Room: opts.Room}
	lobby := map[string]int{} // subject → index in r.Lobby of a visit still waiting
	_, err := ReadMerged(ctx, files, func(e *Entry) error {
		r.notePerson(e) // a login before the window still names the person
		if !window.Match(e) || !(room.Match(e) || contextEvent(e.Event)) {
			return nil
		}
		r.add(e, lobby)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Report) add(e *Entry, lobby map[string]int) {
	if r.Records == 0 {
		r.FirstSeq, r.First = e.Seq, e.Time
	}
	r.Records++
	r.LastSeq, r.Last = e.Seq, e.Time
	if i, found := slices.BinarySearch(r.Nodes, e.Node); !found {
		r.Nodes = slices.Insert(r.Nodes, i, e.Node)
	}
	m := Moment{Time: e.Time, Node: e.Node, Seq: e.Seq, Event: e.Event}
	subject, actor, target, reason := e.Str(FieldSubject), e.Str(FieldActor), e.Str(FieldTarget), e.Str(FieldReason)
	// Texts name people as the identity provider did, beside the subject.
	nSubject, nActor, nTarget := r.Named(subject), r.Named(actor), r.Named(target)
	reasons := e.Strs(FieldReasons)
	because := func(rs ...string) string {
		var nz []string
		for _, s := range rs {
			if s != "" {
				nz = append(nz, s)
			}
		}
		if len(nz) == 0 {
			return ""
		}
		return " (" + strings.Join(nz, ", ") + ")"
	}
	waiting := func(s string) (*LobbyVisit, bool) {
		i, ok := lobby[s]
		if !ok {
			return nil, false
		}
		return &r.Lobby[i], true
	}
	switch e.Event {
	case EventAdmissionDecision:
		rev, id := e.Str(FieldPolicyRevision), e.Str(FieldDecisionID)
		switch d := e.Str(FieldDecision); d {
		case DecisionAllow:
			r.Admitted = append(r.Admitted, Admission{Time: e.Time, Node: e.Node, Seq: e.Seq, Subject: subject, Role: e.Str(FieldRole), Reasons: reasons, DecisionID: id, PolicyRevision: rev})
			m.Text = fmt.Sprintf("%s admitted as %s by policy%s", nSubject, dash(e.Str(FieldRole)), because(reasons...))
		case DecisionLobby:
			if _, ok := waiting(subject); !ok {
				lobby[subject] = len(r.Lobby)
				r.Lobby = append(r.Lobby, LobbyVisit{Subject: subject, Knocked: e.Time, Reasons: reasons, Outcome: "still waiting"})
			}
			m.Text = fmt.Sprintf("%s sent to the lobby by policy%s", nSubject, because(reasons...))
		case DecisionDeny:
			r.Refused = append(r.Refused, Refusal{Time: e.Time, Node: e.Node, Seq: e.Seq, Subject: subject, Reasons: reasons, DecisionID: id, PolicyRevision: rev, ClientIP: e.Str(FieldClientIP)})
			m.Text = fmt.Sprintf("%s refused%s", nSubject, because(reasons...))
		default:
			m.Text = fmt.Sprintf("%s: decision %q", nSubject, d)
		}
		if id != "" || rev != "" {
			m.Text += fmt.Sprintf(" [decision %s, policy %s]", dash(id), dash(rev))
		}
	case EventLobbyKnock:
		if _, ok := waiting(subject); !ok {
			lobby[subject] = len(r.Lobby)
			r.Lobby = append(r.Lobby, LobbyVisit{Subject: subject, Knocked: e.Time, Outcome: "still waiting"})
		}
		m.Text = nSubject + " knocked"
	case EventLobbyAdmit:
		if v, ok := waiting(target); ok {
			v.Outcome, v.By, v.At = "admitted", actor, e.Time
			delete(lobby, target)
		}
		r.Admitted = append(r.Admitted, Admission{Time: e.Time, Node: e.Node, Seq: e.Seq, Subject: target, Role: e.Str(FieldRole), AdmittedBy: actor})
		m.Text = fmt.Sprintf("%s admitted %s from the lobby as %s", nActor, nTarget, dash(e.Str(FieldRole)))
	case EventLobbyDeny:
		if v, ok := waiting(target); ok {
			v.Outcome, v.By, v.At, v.Reason = "turned away", actor, e.Time, reason
			delete(lobby, target)
		}
		m.Text = fmt.Sprintf("%s turned %s away from the lobby%s", nActor, nTarget, because(reason))
	case EventRoomRemove:
		m.Text = fmt.Sprintf("%s removed %s%s", nActor, nTarget, because(reason))
		r.Removals = append(r.Removals, m)
	case EventRoomBan:
		m.Text = fmt.Sprintf("%s banned %s%s", nActor, nTarget, because(reason, e.Str(FieldUntil)))
		r.Removals = append(r.Removals, m)
	case EventRoomRole:
		m.Text = fmt.Sprintf("%s made %s %s (was %s)%s", nActor, nTarget, dash(e.Str(FieldTo)), dash(e.Str(FieldFrom)), because(reason))
		r.RoomControls = append(r.RoomControls, m)
	case EventRoomSuspend:
		// Suspending locks the room: it is a room control too.
		m.Text = fmt.Sprintf("%s suspended the room and locked it%s", nActor, because(reason))
		r.Removals = append(r.Removals, m)
		r.RoomControls = append(r.RoomControls, m)
	case EventRoomLock:
		m.Text = nActor + " locked the room"
		r.RoomControls = append(r.RoomControls, m)
	case EventRoomUnlock:
		m.Text = nActor + " unlocked the room"
		r.RoomControls = append(r.RoomControls, m)
	case EventRoomCreate:
		m.Text = nActor + " created the room"
		r.RoomControls = append(r.RoomControls, m)
	case EventRoomRecreated:
		// Nobody did it: the store lost the room, and with it the lock
		// and bans a host had set.
		m.Text = "the room was created again with its configured settings, unlocked and without its bans" + because(reason)
		r.RoomControls = append(r.RoomControls, m)
	case EventRoomUpdate:
		m.Text = nActor + " changed the room" + because(e.Str(FieldChanges))
		r.RoomControls = append(r.RoomControls, m)
	case EventE2EEKeyRegistered:
		m.Text = fmt.Sprintf("%s registered an end-to-end key%s", nSubject, because(e.Str(FieldDevice), e.Str(FieldKeyID)))
		r.Keys = append(r.Keys, m)
	case EventE2EEEpoch:
		members := e.Str(FieldMembers)
		switch members {
		case "":
		case "1":
			members = "1 member"
		default:
			members += " members"
		}
		m.Text = fmt.Sprintf("key epoch %s%s", e.Str(FieldEpoch), because(reason, members))
		r.Keys = append(r.Keys, m)
	case EventE2EERejected:
		m.Text = fmt.Sprintf("end-to-end key from %s rejected%s", nSubject, because(reason))
		r.Keys = append(r.Keys, m)
	case EventPolicyReload:
		m.Text = fmt.Sprintf("%s reloaded: %s → %s", policyName(e), dash(e.Str(FieldPreviousRevision)), dash(e.Str(FieldRevision)))
		r.Changes = append(r.Changes, m)
	case EventPolicyReloadRejected:
		m.Text = fmt.Sprintf("%s %s rejected, %s stays%s", policyName(e), dash(e.Str(FieldRevision)), dash(e.Str(FieldCurrentRevision)), because(e.Str(FieldError)))
		r.Changes = append(r.Changes, m)
	case EventConfigReload:
		m.Text = fmt.Sprintf("configuration reloaded: %s → %s", dash(e.Str(FieldPreviousRevision)), dash(e.Str(FieldRevision)))
		r.Changes = append(r.Changes, m)
	case EventConfigReloadRejected:
		m.Text = fmt.Sprintf("configuration %s rejected%s", dash(e.Str(FieldRevision)), because(e.Str(FieldError)))
		r.Changes = append(r.Changes, m)
	case EventTLSReload:
		m.Text = fmt.Sprintf("TLS certificate reloaded: %s → %s, valid until %s", dash(e.Str(FieldPreviousSerial)), dash(e.Str(FieldSerial)), dash(e.Str(FieldNotAfter)))
		r.Changes = append(r.Changes, m)
	case EventTLSReloadRejected:
		m.Text = fmt.Sprintf("TLS certificate reload rejected, %s stays%s", dash(e.Str(FieldSerial)), because(e.Str(FieldError)))
		r.Changes = append(r.Changes, m)
	case EventGatewayStart:
		m.Text = "gateway started" + because(e.Str(FieldVersion))
		r.Changes = append(r.Changes, m)
	case EventGatewayStop:
		m.Text = "gateway stopped" + because(reason)
		r.Changes = append(r.Changes, m)
	default:
		m.Text = strings.TrimSpace(who(e) + " " + detail(e))
	}
	r.Timeline = append(r.Timeline, m)
}

// policyName says which policy a reload record is about.
func policyName(e *Entry) string {
	if e.Str(FieldShadow) == "true" {
		return "shadow policy"
	}
	return "policy"
}

// IntegritySummary says in one line what Verify found, for the report.
func IntegritySummary(res *VerifyResult, err error) string {
	switch {
	case err != nil:
		return "NOT VERIFIED: " + err.Error()
	case res.Problem != nil:
		return "FAILED: " + res.Problem.Error()
	}
	s := fmt.Sprintf("chain of %d records verified, %d checkpoint signatures valid (key %s)", res.Records, res.Checkpoints, strings.Join(res.KeyIDs, ", "))
	switch {
	case res.Torn != nil:
		s += fmt.Sprintf("; torn tail after seq %d (crash during a write)", res.Torn.AfterSeq)
	case res.Sealed:
		s += "; log sealed on close"
	default:
		s += fmt.Sprintf("; %d records after the last checkpoint not yet signed", res.Unsigned)
	}
	return s
}

// clock is a full date and time in UTC: a report is read long after the
// meeting, and across time zones.
func (r *Report) clock(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (r *Report) windowText() string {
	from, to := "start of log", "end of log"
	if !r.Since.IsZero() {
		from = r.Since.Format(time.RFC3339)
	}
	if !r.Until.IsZero() {
		to = r.Until.Format(time.RFC3339)
	}
	return from + " to " + to
}

func (r *Report) recordsText() string {
	if r.Records == 0 {
		return "none"
	}
	if r.multiNode() {
		names := make([]string, len(r.Nodes))
		for i, n := range r.Nodes {
			names[i] = NodeName(n)
		}
		return fmt.Sprintf("%d from %d nodes (%s), %s to %s", r.Records, len(r.Nodes), strings.Join(names, ", "), r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339))
	}
	return fmt.Sprintf("%d (seq %d–%d, %s to %s)", r.Records, r.FirstSeq, r.LastSeq, r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339))
}

func (r *Report) multiNode() bool { return len(r.Nodes) > 1 }

// seqText is a record's place in its chain: "#seq", or "node#seq" when the
// report spans several nodes.
func (r *Report) seqText(m Moment) string {
	if r.multiNode() {
		return NodeName(m.Node) + "#" + fmt.Sprint(m.Seq)
	}
	return "#" + fmt.Sprint(m.Seq)
}

func (a Admission) how(named func(string) string) string {
	if a.AdmittedBy != "" {
		return "from the lobby, by " + named(a.AdmittedBy)
	}
	s := "by policy"
	if len(a.Reasons) > 0 {
		s += " (" + strings.Join(a.Reasons, ", ") + ")"
	}
	return s + fmt.Sprintf(", decision %s, policy %s", dash(a.DecisionID), dash(a.PolicyRevision))
}

func (v LobbyVisit) outcome(clock func(time.Time) string, named func(string) string) string {
	switch v.Outcome {
	case "admitted":
		return fmt.Sprintf("admitted by %s at %s", named(v.By), clock(v.At))
	case "turned away":
		s := fmt.Sprintf("turned away by %s at %s", named(v.By), clock(v.At))
		if v.Reason != "" {
			s += " (" + v.Reason + ")"
		}
		return s
	}
	return v.Outcome
}

// WriteText writes the report as plain text.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Meeting report: room %s\n", r.Room)
	fmt.Fprintf(tw, "Window:\t%s\n", r.windowText())
	fmt.Fprintf(tw, "Records:\t%s\n", r.recordsText())
	fmt.Fprintf(tw, "Integrity:\t%s\n", strings.ReplaceAll(dash(r.Integrity), "\n", "\n\t"))
	section := func(title string, n int) bool {
		fmt.Fprintf(tw, "\n%s (%d)\n", title, n)
		if n == 0 {
			fmt.Fprintln(tw, "  none")
		}
		return n > 0
	}
	section("Admitted", len(r.Admitted))
	for _, a := range r.Admitted {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.clock(a.Time), r.Named(a.Subject), dash(a.Role), a.how(r.Named))
	}
	section("Refused", len(r.Refused))
	for _, x := range r.Refused {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tdecision %s, policy %s, from %s\n", r.clock(x.Time), r.Named(x.Subject), strings.Join(x.Reasons, ", "), dash(x.DecisionID), dash(x.PolicyRevision), dash(x.ClientIP))
	}
	section("Lobby", len(r.Lobby))
	for _, v := range r.Lobby {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.clock(v.Knocked), r.Named(v.Subject), v.outcome(r.clock, r.Named))
	}
	for _, s := range []struct {
		title string
		ms    []Moment
	}{{"Removed, banned, suspended", r.Removals}, {"Room controls", r.RoomControls}, {"End-to-end keys", r.Keys}, {"Policy, configuration, gateway", r.Changes}} {
		section(s.title, len(s.ms))
		for _, m := range s.ms {
			fmt.Fprintf(tw, "  %s\t%s\n", r.clock(m.Time), m.Text)
		}
	}
	fmt.Fprintf(tw, "\nTimeline\n")
	for _, m := range r.Timeline {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.clock(m.Time), r.seqText(m), m.Event, m.Text)
	}
	return tw.Flush()
}

// mdCell escapes text for a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// WriteMarkdown writes the report as Markdown (for a ticket or a wiki).
func (r *Report) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# Meeting report: room `%s`\n\n", strings.ReplaceAll(r.Room, "`", ""))
	fmt.Fprintf(b, "| | |\n|---|---|\n| Window | %s |\n| Records | %s |\n| Integrity | %s |\n",
		mdCell(r.windowText()), mdCell(r.recordsText()), mdCell(dash(r.Integrity)))
	table := func(title string, n int, header ...string) {
		fmt.Fprintf(b, "\n## %s (%d)\n\n", title, n)
		if n == 0 {
			b.WriteString("None.\n")
			return
		}
		fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	}
	row := func(cells ...string) {
		for i := range cells {
			cells[i] = mdCell(cells[i])
		}
		fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
	}
	table("Admitted", len(r.Admitted), "Time", "Who", "Role", "How")
	for _, a := range r.Admitted {
		row(r.clock(a.Time), r.Named(a.Subject), dash(a.Role), a.how(r.Named))
	}
	table("Refused", len(r.Refused), "Time", "Who", "Reasons", "Decision", "Policy", "From")
	for _, x := range r.Refused {
		row(r.clock(x.Time), r.Named(x.Subject), strings.Join(x.Reasons, ", "), dash(x.DecisionID), dash(x.PolicyRevision), dash(x.ClientIP))
	}
	table("Lobby", len(r.Lobby), "Knocked", "Who", "Outcome")
	for _, v := range r.Lobby {
		row(r.clock(v.Knocked), r.Named(v.Subject), v.outcome(r.clock, r.Named))
	}
	for _, s := range []struct {
		title string
		ms    []Moment
	}{{"Removed, banned, suspended", r.Removals}, {"Room controls", r.RoomControls}, {"End-to-end keys", r.Keys}, {"Policy, configuration, gateway", r.Changes}} {
		table(s.title, len(s.ms), "Time", "What happened")
		for _, m := range s.ms {
			row(r.clock(m.Time), m.Text)
		}
	}
	table("Timeline", len(r.Timeline), "Time", "Seq", "Event", "What happened")
	for _, m := range r.Timeline {
		seq := fmt.Sprint(m.Seq)
		if r.multiNode() {
			seq = NodeName(m.Node) + "#" + seq
		}
		row(r.clock(m.Time), seq, "`"+m.Event+"`", m.Text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
