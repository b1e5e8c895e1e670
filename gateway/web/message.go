package web

// Message is the data of the "message" page: a heading (View.Title), a
// sentence, and optionally a link or a one-button POST form.
type Message struct {
	Text Text
	Link *Link
	Form *Form
}

// Link is an <a>.
type Link struct {
	Href  string
	Label Text
}

// Form is a form that POSTs to Action with one button.
type Form struct {
	Action string
	Button Text
}

// Waiting is the data of the "waiting" page (the waiting room, the
// refusal with its passcode field, and the removed page): one page with
// three states, followed by static/waiting.js.
type Waiting struct {
	// Room is the room id the script calls the API about.
	Room string
	// RoomName is shown while waiting only: a refusal must not confirm
	// that a room exists.
	RoomName string
	Wait     string
	State    string // "waiting", "denied" or "removed"
	Message  Text
	Form     bool // passcode form
	Again    bool // "ask to join again" button
	Leave    bool // a way out of the waiting room
	// Who is the signed-in person's name or email, for "Signed in as".
	Who string
}

// ConsolePrefix and ConsoleSuffix frame a room's host console URL, served
// by the rooms API (gateway/roomsapi) beside the room's JSON.
const (
	ConsolePrefix = "/.meetguard/api/v1/rooms/"
	ConsoleSuffix = "/console"
)

// ConsolePath is the stable URL of room's host console.
func ConsolePath(room string) string { return ConsolePrefix + room + ConsoleSuffix }
