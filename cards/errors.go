package cards

import (
	"errors"

	"onecard/devices"
)

func isNoCard(err error) bool { return errors.Is(err, devices.ErrNoCard) }

// isCardTrouble is an error of the card, not of the device: it left the
// antenna or refused a key midway.
func isCardTrouble(err error) bool {
	return errors.Is(err, devices.ErrCardLost) || errors.Is(err, devices.ErrAuth)
}
