package gdrive_test

import (
	"errors"
	"fmt"

	"github.com/authgate/authgate/connector/gdrive"
)

// Asking for a Google Doc with a text MIME type is refused before any call:
// Drive would have stored a .txt. Create runs the same check first, then
// reads the mimeType back. (With authgate, build the client with
// gdrive.New(ctx, client.TokenSource(ctx, credentialID, authgate.TokenRequest{}), gdrive.Options{}).)
func ExampleCheckCreate() {
	err := gdrive.CheckCreate(gdrive.CreateParams{Kind: gdrive.KindGoogleDoc, Name: "notes.txt", MimeType: "text/plain"})
	fmt.Println(errors.Is(err, gdrive.ErrWrongMimeType))
	fmt.Println(gdrive.CheckCreate(gdrive.CreateParams{Kind: gdrive.KindGoogleDoc, Name: "Notes"}))
	// Output:
	// true
	// <nil>
}
