package gdocs_test

import (
	"fmt"

	"google.golang.org/api/docs/v1"

	"github.com/authgate/authgate/connector/gdocs"
)

// Text reads a document's body as plain text (what Get returns, after
// AppendText calls). With authgate, build the client with
// gdocs.New(ctx, client.TokenSource(ctx, credentialID, authgate.TokenRequest{}), gdocs.Options{}).
func ExampleText() {
	d := &docs.Document{Body: &docs.Body{Content: []*docs.StructuralElement{
		{Paragraph: &docs.Paragraph{Elements: []*docs.ParagraphElement{{TextRun: &docs.TextRun{Content: "Weekly report\n"}}}}},
		{Paragraph: &docs.Paragraph{Elements: []*docs.ParagraphElement{{TextRun: &docs.TextRun{Content: "All green.\n"}}}}},
	}}}
	fmt.Print(gdocs.Text(d))
	// Output:
	// Weekly report
	// All green.
}
