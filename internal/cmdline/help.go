package cmdline

import (
	"strings"

	"github.com/tapis-agent/tapis-agent/internal/suggest"
)

// Command is the help of one command of tapis-token or tapis-agent: what
// `PROGRAM CMD --help` and `PROGRAM help CMD` print, the usage line of its
// usage errors and its line in the program's help. Each program keeps its
// commands in one table (tokencli.Commands, and commands in
// cmd/tapis-agent); a new command adds its entry there.
//
// The token path never reads these: the tables live in the tapis-agent
// binary, which runs every command but the token.
type Command struct {
	Name    string   // as typed: "login"
	Usage   []string // after the program's name: "login [TENANT] [--password-stdin]"
	Summary string   // what it does, a line for the program's list of commands
	About   string   // more, in paragraphs; may be empty
	Flags   []FlagHelp
	Example []string // command lines a user would type
}

// FlagHelp documents one flag: its spellings and value, and what it does.
type FlagHelp struct {
	Names string // "-u, --username NAME"
	Doc   string
}

// Help returns cmd's help: usage, what it does, flags, example.
func (c *Command) Help(program string) string {
	var b strings.Builder
	b.WriteString(c.UsageText(program))
	b.WriteString("\n")
	b.WriteString(wrap(upperFirst(c.Summary)+".", "", 78))
	if c.About != "" {
		for _, p := range strings.Split(c.About, "\n\n") {
			b.WriteString("\n")
			b.WriteString(wrap(p, "", 78))
		}
	}
	if len(c.Flags) > 0 {
		b.WriteString("\nFlags:\n")
		b.WriteString(FlagTable(c.Flags))
	}
	if len(c.Example) > 0 {
		b.WriteString("\nExample:\n")
		for _, e := range c.Example {
			b.WriteString("  " + e + "\n")
		}
	}
	return b.String()
}

// UsageText returns cmd's usage lines, "usage: PROGRAM …" and the others
// aligned under it.
func (c *Command) UsageText(program string) string {
	var b strings.Builder
	for i, u := range c.Usage {
		if i == 0 {
			b.WriteString("usage: ")
		} else {
			b.WriteString("       ")
		}
		b.WriteString(program + " " + u + "\n")
	}
	return b.String()
}

// FlagNames returns every spelling of cmd's flags: "-u", "--username", ….
func (c *Command) FlagNames() []string {
	var names []string
	for _, f := range c.Flags {
		for _, n := range strings.Split(f.Names, ", ") {
			n, _, _ = strings.Cut(n, " ")
			names = append(names, n)
		}
	}
	return names
}

// FindCommand returns the command of cmds named name, or nil.
func FindCommand(cmds []Command, name string) *Command {
	for i := range cmds {
		if cmds[i].Name == name {
			return &cmds[i]
		}
	}
	return nil
}

// ClosestCommand returns the name of the command of cmds that name is a
// likely typo of, or "".
func ClosestCommand(cmds []Command, name string) string {
	names := make([]string, len(cmds))
	for i := range cmds {
		names[i] = cmds[i].Name
	}
	return suggest.Closest(name, names)
}

// CommandList returns the lines of a program's help that list cmds, each
// name followed by its summary.
func CommandList(cmds []Command) string {
	rows := make([]FlagHelp, len(cmds))
	for i, c := range cmds {
		rows[i] = FlagHelp{Names: c.Name, Doc: c.Summary}
	}
	return FlagTable(rows)
}

// HelpText answers `PROGRAM help [COMMAND]`: with no argument the
// program's help, programHelp; with one, that command's help, or a usage
// error naming the command a typo meant.
func HelpText(program string, cmds []Command, programHelp string, args []string) (string, error) {
	switch len(args) {
	case 0:
		return programHelp, nil
	case 1:
		if c := FindCommand(cmds, args[0]); c != nil {
			return c.Help(program), nil
		}
		return "", UnknownCommand(program, cmds, "no command ", args[0])
	}
	return "", Usage("help takes at most one COMMAND")
}

// UnknownCommand is the usage error for word, which names no command of
// cmds: msg and word, the command it is a likely typo of, and a hint to
// the program's list of commands.
func UnknownCommand(program string, cmds []Command, msg, word string) error {
	msg += word
	if s := ClosestCommand(cmds, word); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return &Failure{Code: ExitUsage, Msg: msg, Hint: program + " help lists the commands"}
}

// WantsHelp reports whether a command's arguments ask for its help: -h or
// --help before any "--".
func WantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}

// WithUsage returns err with cmd's usage lines and a hint to its help
// when err is a mistake in the command line (a usage error without a hint
// of its own, as Usage and ParseArgs make); else err.
func WithUsage(err error, program string, cmd *Command) error {
	f, ok := err.(*Failure)
	if !ok || f.Code != ExitUsage || f.Hint != "" || f.Usage != "" || cmd == nil {
		return err
	}
	g := *f
	g.Usage = cmd.UsageText(program)
	g.Hint = program + " " + cmd.Name + " --help"
	if cmd.Name == "" {
		g.Hint = program + " --help"
	}
	return &g
}

// FlagTable aligns names and docs in two columns, wrapping docs at 78
// columns; a name too long for the column puts its doc on the next line.
func FlagTable(rows []FlagHelp) string {
	const maxCol = 24
	col := 0
	for _, r := range rows {
		if n := len(r.Names) + 4; n > col && n <= maxCol {
			col = n
		}
	}
	indent := strings.Repeat(" ", col)
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("  " + r.Names)
		if len(r.Names)+4 > col {
			b.WriteString("\n" + indent)
		} else {
			b.WriteString(strings.Repeat(" ", col-len(r.Names)-2))
		}
		b.WriteString(strings.TrimPrefix(wrap(r.Doc, indent, 78), indent))
	}
	return b.String()
}

// wrap fills text into lines of at most width columns, each starting with
// indent; a line break in text is kept.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		n := 0
		for i, w := range strings.Fields(line) {
			if i > 0 && n+1+len(w) > width {
				b.WriteString("\n")
				n = 0
			}
			if n == 0 {
				b.WriteString(indent)
				n = len(indent)
			} else {
				b.WriteString(" ")
				n++
			}
			b.WriteString(w)
			n += len(w)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func upperFirst(s string) string {
	if s != "" && 'a' <= s[0] && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
