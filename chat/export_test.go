package chat

// Test hooks for the external tests' fuzz targets.
var (
	CleanText = cleanText
	Words     = words
	Fold      = fold
)

func SellingReason(s string) string { return sellingReason(fold(s), words(s)) }
func HasLink(s string) bool         { return hasLink(fold(s)) }
