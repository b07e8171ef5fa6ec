// The templates casework installs on first start. Administrators change
// them through AdminService.UpdateTemplate; a stored template is never
// overwritten by a newer default.
#include "server/notify/templates.h"

namespace casework::notify {
namespace {

v1::Template Make(const char* id, const char* procedure, v1::Channel channel,
                  std::vector<std::vector<const char*>> variants) {
  v1::Template t;
  t.set_name(TemplateName(id));
  t.set_procedure(procedure);
  t.set_channel(channel);
  for (const auto& v : variants) {
    auto* out = t.add_variants();
    out->set_language_code(v[0]);
    out->set_subject(v[1]);
    out->set_body(v[2]);
  }
  return t;
}

}  // namespace

std::vector<v1::Template> DefaultTemplates() {
  using v1::CHANNEL_CHAT;
  using v1::CHANNEL_EMAIL;
  return {
      Make("trade_in.contact.device_locked", "trade_in", CHANNEL_EMAIL,
           {{"nl", "Update over je inruil ({{v_number}})",
             "Hoi {{customer_name}},\n\n"
             "Je {{product_name}} is bij ons aangekomen, maar het toestel is nog "
             "beveiligd met een toegangscode of gekoppeld aan een account (iCloud, "
             "Google of Samsung). Zo kunnen we het niet testen.\n\n"
             "Wil je ons de toegangscode sturen, of het toestel uit je account "
             "verwijderen en ons laten weten wanneer dat gelukt is? Daarna ronden we "
             "je inruil zo snel mogelijk af.\n\n"
             "Met vriendelijke groet,\nHet supportteam"},
            {"en", "Update on your trade-in ({{v_number}})",
             "Hi {{customer_name}},\n\n"
             "Your {{product_name}} has arrived, but it is still protected by a "
             "passcode or linked to an account (iCloud, Google or Samsung), so we "
             "cannot test it yet.\n\n"
             "Please send us the passcode, or remove the device from your account "
             "and let us know once that is done. We will then complete your "
             "trade-in as soon as possible.\n\n"
             "Kind regards,\nThe support team"}}),
      Make("trade_in.contact.proof_of_purchase", "trade_in", CHANNEL_EMAIL,
           {{"nl", "Update over je inruil ({{v_number}})",
             "Hoi {{customer_name}},\n\n"
             "We hebben je {{product_name}} in goede orde ontvangen, bedankt voor "
             "het zorgvuldig versturen!\n\n"
             "Toestellen die (bijna) nieuw zijn controleren we steekproefsgewijs. "
             "Dat is een standaardprocedure en geen reden tot zorg. Voor deze "
             "controle hebben we alleen een aankoopbewijs nodig. Wil je dat naar ons "
             "sturen? Hoe sneller we het hebben, hoe sneller we je uitbetaling "
             "regelen.\n\n"
             "Met vriendelijke groet,\nHet supportteam"},
            {"en", "Update on your trade-in ({{v_number}})",
             "Hi {{customer_name}},\n\n"
             "Your {{product_name}} has arrived safely, thank you for packing it so "
             "carefully!\n\n"
             "We run a spot check on devices that look new or nearly new. This is a "
             "standard procedure and nothing to worry about: all we need is a proof "
             "of purchase. Could you send it to us? The sooner we have it, the "
             "sooner we can arrange your payout.\n\n"
             "Kind regards,\nThe support team"}}),
      Make("trade_in.reminder", "trade_in", CHANNEL_EMAIL,
           {{"nl", "Herinnering: update over je inruil ({{v_number}})",
             "Hoi {{customer_name}},\n\n"
             "We wachten nog op je reactie over je {{product_name}}. Zonder je "
             "antwoord kunnen we je inruil niet afronden. Reageer op deze e-mail, "
             "dan helpen we je verder.\n\n"
             "Met vriendelijke groet,\nHet supportteam"},
            {"en", "Reminder: update on your trade-in ({{v_number}})",
             "Hi {{customer_name}},\n\n"
             "We are still waiting for your reply about your {{product_name}}. We "
             "cannot complete your trade-in without it. Just reply to this email "
             "and we will take it from there.\n\n"
             "Kind regards,\nThe support team"}}),
      Make("trade_in.ops.test_again", "trade_in", CHANNEL_CHAT,
           {{"en", "",
             "{{v_number}} | {{s_number}} | unlock code received (reveal it in "
             "casework). Test again"}}),
      Make("trade_in.ops.proof_approved", "trade_in", CHANNEL_CHAT,
           {{"en", "", "{{v_number}} | {{s_number}} | Proof of Purchase approved"}}),
      Make("unlock.submitted", "unlock", CHANNEL_EMAIL,
           {{"en", "Your unlock request for {{device_model}} has been submitted",
             "Hi {{customer_name}},\n\n"
             "We have submitted the request to unlock your {{device_model}} (IMEI "
             "{{imei}}) so that you can use it with another carrier. Unlocking "
             "usually takes 2 to 3 business days: expect it between {{expected_from}} "
             "and {{expected_by}}.\n\n"
             "You will receive an email with instructions as soon as the device is "
             "unlocked.\n\nKind regards,\nCustomer Support"}}),
      Make("unlock.confirmation", "unlock", CHANNEL_EMAIL,
           {{"en", "Your {{device_model}} is unlocked",
             "Hi {{customer_name}},\n\n"
             "Good news: your {{device_model}} (IMEI {{imei}}) is unlocked.\n\n"
             "To finish, please:\n"
             "1. Turn the device off.\n"
             "2. Insert the SIM card of your new carrier.\n"
             "3. Turn the device on and follow the prompts; connect to Wi-Fi if "
             "asked.\n\n"
             "If the device still asks for an unlock code, reply to this email.\n\n"
             "Kind regards,\nCustomer Support"}}),
      Make("unlock.confirmation_resend", "unlock", CHANNEL_EMAIL,
           {{"en", "Again: your {{device_model}} is unlocked",
             "Hi {{customer_name}},\n\n"
             "We are sending the unlock confirmation for your {{device_model}} (IMEI "
             "{{imei}}) again. If you cannot find our emails, please look in your spam "
             "or junk folder as well.\n\n"
             "To finish: turn the device off, insert the SIM card of your new "
             "carrier, turn it on and follow the prompts.\n\n"
             "Kind regards,\nCustomer Support"}}),
      Make("unlock.escalated", "unlock", CHANNEL_CHAT,
           {{"en", "",
             "Unlock {{case_id}} | account {{account_number}} | IMEI {{imei}} | "
             "escalated: {{escalation_note}}"}}),
      Make("otp.test_mail", "otp", CHANNEL_EMAIL,
           {{"en", "Mr D: test email from customer support",
             "Hi,\n\n"
             "This is a test email from Mr D customer support, sent while we help you "
             "with the one-time PIN for your profile. You do not need to do anything: "
             "just let the agent know that it arrived.\n\nMr D Customer Support"}}),
      Make("otp.escalated_team_lead", "otp", CHANNEL_CHAT,
           {{"en", "",
             "OTP ticket {{case_id}} | profile {{profile_id}} | no OTP, test mail not "
             "received | suspected account takeover: {{suspected_takeover}}"}}),
      Make("otp.escalated", "otp", CHANNEL_CHAT,
           {{"en", "", "OTP ticket {{case_id}} | profile {{profile_id}} | {{escalation_note}}"}}),
      Make("enrollment.confirmation", "enrollment", CHANNEL_EMAIL,
           {{"en", "Your device protection plan {{plan_number}}",
             "Hi {{customer_name}},\n\n"
             "Your devices are protected. Please keep this email: you need the plan "
             "number for every question or claim.\n\n"
             "Protection plan number: {{plan_number}}\n"
             "Plan: {{plan_name}}\n"
             "Covers: {{covered_perils}} (issues that existed before enrollment are "
             "not covered)\n"
             "Monthly price: {{monthly_price}}\n"
             "Devices: {{devices}}\n"
             "Claims are reviewed within {{review_days}} business days.\n\n"
             "You can see and manage your plan in your account on our website or in "
             "the app. Please keep your contact details up to date so that we can "
             "reach you about a claim.\n\nKind regards,\nCustomer Support"}}),
      Make("claim.documents_requested", "claim", CHANNEL_EMAIL,
           {{"en", "Your claim on plan {{plan_number}}: documents needed",
             "Hi {{customer_name}},\n\n"
             "To review your claim we need a few documents: {{documents_needed}}.\n\n"
             "Reply to this email with the documents attached.\n\n"
             "Kind regards,\nCustomer Support"}}),
      Make("claim.review_started", "claim", CHANNEL_EMAIL,
           {{"en", "Your claim on plan {{plan_number}} is being reviewed",
             "Hi {{customer_name}},\n\n"
             "We are reviewing your claim and expect to let you know our decision by "
             "{{expected_decision}}.\n\nKind regards,\nCustomer Support"}}),
      Make("claim.resolved", "claim", CHANNEL_EMAIL,
           {{"en", "Your claim on plan {{plan_number}}: decision",
             "Hi {{customer_name}},\n\n"
             "Good news: your claim is approved. Resolution: {{resolution}} {{amount}}.\n"
             "We will contact you about the next steps.\n\n"
             "Kind regards,\nCustomer Support"}}),
      Make("claim.denied", "claim", CHANNEL_EMAIL,
           {{"en", "Your claim on plan {{plan_number}}: decision",
             "Hi {{customer_name}},\n\n"
             "We are sorry: we cannot accept your claim because {{denial_reasons}}.\n"
             "Reply to this email if you have questions about this decision.\n\n"
             "Kind regards,\nCustomer Support"}}),
      Make("trade_in.ops.no_response", "trade_in", CHANNEL_CHAT,
           {{"en", "",
             "{{v_number}} | {{s_number}} | no response after {{reminders_sent}} "
             "reminder(s); back in problem orders"}}),
  };
}

}  // namespace casework::notify
