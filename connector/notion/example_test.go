package notion_test

import (
	"encoding/json"
	"fmt"

	"github.com/authgate/authgate/connector/notion"
)

// A row goes into a database's data source (Notion-Version 2025-09-03):
// CreatePage with a ParentDatabase resolves it with DataSourceIDs, after
// checking the id really is a database. Title and Paragraph build the JSON.
func ExampleDataSourceIDs() {
	var db notion.Object
	_ = json.Unmarshal([]byte(`{"object":"database","id":"db-1","data_sources":[{"id":"ds-1","name":"Tasks"}]}`), &db)
	fmt.Println(db.Kind(), notion.DataSourceIDs(db))
	b, _ := json.Marshal(notion.Title("Run log"))
	fmt.Println(string(b))
	// Output:
	// database [ds-1]
	// {"title":{"title":[{"text":{"content":"Run log"}}]}}
}
