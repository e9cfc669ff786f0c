"""IRC numeric replies as named constants: the only place a numeric code is spelled out, and the
only place the text of a numeric whose text never changes is (`TEXTS`).

Names and meanings follow the Modern IRC client protocol (modern.ircdocs.horse).
"""

RPL_WELCOME = "001"
RPL_YOURHOST = "002"
RPL_CREATED = "003"
RPL_MYINFO = "004"
RPL_ISUPPORT = "005"
RPL_UMODEIS = "221"
RPL_LUSERCLIENT = "251"
RPL_LUSEROP = "252"
RPL_LUSERUNKNOWN = "253"
RPL_LUSERCHANNELS = "254"
RPL_LUSERME = "255"
RPL_ADMINME = "256"
RPL_ADMINLOC1 = "257"
RPL_ADMINLOC2 = "258"
RPL_ADMINEMAIL = "259"
RPL_LOCALUSERS = "265"
RPL_GLOBALUSERS = "266"
RPL_WHOISCERTFP = "276"
RPL_AWAY = "301"
RPL_USERHOST = "302"
RPL_ISON = "303"
RPL_UNAWAY = "305"
RPL_NOWAWAY = "306"
RPL_WHOISUSER = "311"
RPL_WHOISSERVER = "312"
RPL_WHOISOPERATOR = "313"
RPL_WHOWASUSER = "314"
RPL_ENDOFWHO = "315"
RPL_WHOISIDLE = "317"
RPL_ENDOFWHOIS = "318"
RPL_WHOISCHANNELS = "319"
RPL_LISTSTART = "321"
RPL_LIST = "322"
RPL_LISTEND = "323"
RPL_CHANNELMODEIS = "324"
RPL_CREATIONTIME = "329"
RPL_WHOISACCOUNT = "330"
RPL_NOTOPIC = "331"
RPL_TOPIC = "332"
RPL_TOPICWHOTIME = "333"
RPL_WHOISBOT = "335"
RPL_INVITELIST = "336"
RPL_ENDOFINVITELIST = "337"
RPL_WHOISACTUALLY = "338"
RPL_INVITING = "341"
RPL_INVEXLIST = "346"
RPL_ENDOFINVEXLIST = "347"
RPL_EXCEPTLIST = "348"
RPL_ENDOFEXCEPTLIST = "349"
RPL_VERSION = "351"
RPL_WHOREPLY = "352"
RPL_NAMREPLY = "353"
RPL_WHOSPCRPL = "354"
RPL_ENDOFNAMES = "366"
RPL_BANLIST = "367"
RPL_ENDOFBANLIST = "368"
RPL_ENDOFWHOWAS = "369"
RPL_INFO = "371"
RPL_MOTD = "372"
RPL_ENDOFINFO = "374"
RPL_MOTDSTART = "375"
RPL_ENDOFMOTD = "376"
RPL_YOUREOPER = "381"
RPL_REHASHING = "382"
RPL_TIME = "391"
ERR_UNKNOWNERROR = "400"
ERR_NOSUCHNICK = "401"
ERR_NOSUCHCHANNEL = "403"
ERR_CANNOTSENDTOCHAN = "404"
ERR_TOOMANYCHANNELS = "405"
ERR_WASNOSUCHNICK = "406"
ERR_TOOMANYTARGETS = "407"
ERR_INVALIDCAPCMD = "410"
ERR_NORECIPIENT = "411"
ERR_NOTEXTTOSEND = "412"
ERR_INPUTTOOLONG = "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NOMOTD = "422"
ERR_NONICKNAMEGIVEN = "431"
ERR_ERRONEUSNICKNAME = "432"
ERR_NICKNAMEINUSE = "433"
ERR_USERNOTINCHANNEL = "441"
ERR_NOTONCHANNEL = "442"
ERR_USERONCHANNEL = "443"
ERR_NOTREGISTERED = "451"
ERR_NEEDMOREPARAMS = "461"
ERR_ALREADYREGISTERED = "462"
ERR_PASSWDMISMATCH = "464"
ERR_KEYSET = "467"
ERR_CHANNELISFULL = "471"
ERR_UNKNOWNMODE = "472"
ERR_INVITEONLYCHAN = "473"
ERR_BANNEDFROMCHAN = "474"
ERR_BADCHANNELKEY = "475"
ERR_BANLISTFULL = "478"
ERR_NOPRIVILEGES = "481"
ERR_CHANOPRIVSNEEDED = "482"
ERR_NOOPERHOST = "491"
ERR_UMODEUNKNOWNFLAG = "501"
ERR_USERSDONTMATCH = "502"
ERR_HELPNOTFOUND = "524"
ERR_INVALIDKEY = "525"
ERR_INVALIDMODEPARAM = "696"
RPL_HELPSTART = "704"
RPL_HELPTXT = "705"
RPL_ENDOFHELP = "706"
RPL_MONONLINE = "730"
RPL_MONOFFLINE = "731"
RPL_MONLIST = "732"
RPL_ENDOFMONLIST = "733"
ERR_MONLISTFULL = "734"
RPL_LOGGEDIN = "900"
RPL_LOGGEDOUT = "901"
ERR_NICKLOCKED = "902"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"

# The last parameter of each numeric whose text is always the same, as hubchat sends it. Callers
# in the workers give only the parameters before it and `with_text` adds it, so a text is written
# once, here (tests/test_constants.py fails on a copy). Numerics whose text varies (001, 404, 696,
# ...) are not listed: their callers give the text.
TEXTS: dict[str, str] = {
    RPL_ISUPPORT: "are supported by this server",
    RPL_LUSEROP: "operator(s) online",
    RPL_LUSERUNKNOWN: "unknown connection(s)",
    RPL_LUSERCHANNELS: "channels formed",
    RPL_ADMINME: "Administrative info",
    RPL_UNAWAY: "You are no longer marked as being away",
    RPL_NOWAWAY: "You have been marked as being away",
    RPL_WHOISOPERATOR: "is an IRC operator",
    RPL_ENDOFWHO: "End of WHO list",
    RPL_WHOISIDLE: "seconds idle, signon time",
    RPL_ENDOFWHOIS: "End of /WHOIS list",
    RPL_LISTSTART: "Users  Name",
    RPL_LISTEND: "End of /LIST",
    RPL_WHOISACCOUNT: "is logged in as",
    RPL_NOTOPIC: "No topic is set",
    RPL_WHOISBOT: "is a bot",
    RPL_ENDOFINVITELIST: "End of /INVITE list",
    RPL_ENDOFINVEXLIST: "End of channel invite exception list",
    RPL_ENDOFEXCEPTLIST: "End of channel exception list",
    RPL_VERSION: "Python, multi-process",
    RPL_ENDOFNAMES: "End of /NAMES list.",
    RPL_ENDOFBANLIST: "End of channel ban list",
    RPL_ENDOFWHOWAS: "End of WHOWAS",
    RPL_ENDOFINFO: "End of INFO list",
    RPL_ENDOFMOTD: "End of /MOTD command.",
    RPL_YOUREOPER: "You are now an IRC operator",
    RPL_REHASHING: "Rehashing",
    ERR_NOSUCHNICK: "No such nick/channel",
    ERR_NOSUCHCHANNEL: "No such channel",
    ERR_TOOMANYCHANNELS: "You have joined too many channels",
    ERR_WASNOSUCHNICK: "There was no such nickname",
    ERR_TOOMANYTARGETS: "Too many targets",
    ERR_INVALIDCAPCMD: "Invalid CAP command",
    ERR_NOTEXTTOSEND: "No text to send",
    ERR_INPUTTOOLONG: "Input line was too long",
    ERR_UNKNOWNCOMMAND: "Unknown command",
    ERR_NOMOTD: "MOTD File is missing",
    ERR_NONICKNAMEGIVEN: "No nickname given",
    ERR_ERRONEUSNICKNAME: "Erroneous nickname",
    ERR_NICKNAMEINUSE: "Nickname is already in use",
    ERR_USERNOTINCHANNEL: "They aren't on that channel",
    ERR_NOTONCHANNEL: "You're not on that channel",
    ERR_USERONCHANNEL: "is already on channel",
    ERR_NOTREGISTERED: "You have not registered",
    ERR_NEEDMOREPARAMS: "Not enough parameters",
    ERR_ALREADYREGISTERED: "You may not reregister",
    ERR_PASSWDMISMATCH: "Password incorrect",
    ERR_CHANNELISFULL: "Cannot join channel (+l)",
    ERR_UNKNOWNMODE: "is unknown mode char to me",
    ERR_INVITEONLYCHAN: "Cannot join channel (+i)",
    ERR_BANNEDFROMCHAN: "Cannot join channel (+b)",
    ERR_BADCHANNELKEY: "Cannot join channel (+k)",
    ERR_BANLISTFULL: "Channel list is full",
    ERR_NOPRIVILEGES: "Permission Denied- You're not an IRC operator",
    ERR_CHANOPRIVSNEEDED: "You're not channel operator",
    ERR_NOOPERHOST: "No O-lines for your host",
    ERR_UMODEUNKNOWNFLAG: "Unknown MODE flag",
    ERR_USERSDONTMATCH: "Cant change mode for other users",
    ERR_HELPNOTFOUND: "No help available on this topic",
    RPL_ENDOFHELP: "End of /HELP",
    # MONITOR (ircv3 monitor): 730-732 carry the targets as their last parameter, so no text.
    RPL_ENDOFMONLIST: "End of MONITOR list",
    ERR_MONLISTFULL: "Monitor list is full.",
    # SASL (ircv3 sasl-3.1); 900's text names the account, so it is not listed.
    RPL_LOGGEDOUT: "You are now logged out",
    ERR_NICKLOCKED: "You must use a nick assigned to you",
    RPL_SASLSUCCESS: "SASL authentication successful",
    ERR_SASLFAIL: "SASL authentication failed",
    ERR_SASLTOOLONG: "SASL message too long",
    ERR_SASLABORTED: "SASL authentication aborted",
    ERR_SASLALREADY: "You have already authenticated using SASL",
    RPL_SASLMECHS: "are available SASL mechanisms",
}


def with_text(code: str, params: tuple[str, ...]) -> tuple[str, ...]:
    """A numeric's parameters, followed by its fixed text when it has one."""
    text = TEXTS.get(code)
    return params if text is None else (*params, text)
